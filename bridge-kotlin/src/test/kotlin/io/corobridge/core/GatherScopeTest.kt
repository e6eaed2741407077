package io.corobridge.core

import java.io.IOException
import java.util.concurrent.atomic.AtomicBoolean
import java.util.logging.Level
import kotlin.concurrent.thread
import java.util.concurrent.atomic.AtomicInteger
import kotlinx.coroutines.CompletableDeferred
import kotlinx.coroutines.awaitCancellation
import kotlinx.coroutines.yield
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Assertions.assertSame
import org.junit.jupiter.api.Assertions.assertThrows
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.extension.RegisterExtension

/** [GatherScope] from Kotlin: fork, the suspend join in coroutines, and the blocking join and close. */
class GatherScopeTest {
    @JvmField
    @RegisterExtension
    val loops = TestLoops()
    private val loop = loops.create("group")

    @Test
    fun `forked calls are read after join, in any order they finish`() {
        val results = loop.runSync {
            val group = loop.openGather<String>()
            val gate = CompletableDeferred<Unit>()
            val slow = group.fork { gate.await(); "slow" }
            val fast = group.fork { yield(); gate.complete(Unit); "fast" }
            assertThrows(GatherIncompleteException::class.java) { fast.get() }
            group.join()
            group.close()
            listOf(slow.get(), fast.get())
        }
        assertEquals(listOf("slow", "fast"), results)
    }

    @Test
    fun `a failure cancels the other calls and join rethrows it unchanged`() {
        val boom = IOException("boom")
        val cancelled = AtomicInteger()
        val thrown = assertThrows(IOException::class.java) {
            loop.runSync {
                val group = loop.openGather<String>()
                val started = CompletableDeferred<Unit>()
                repeat(3) {
                    group.fork {
                        try {
                            started.complete(Unit)
                            awaitCancellation()
                        } finally {
                            cancelled.incrementAndGet()
                        }
                    }
                }
                group.fork { started.await(); throw boom }
                try {
                    group.join()
                } finally {
                    group.close()
                }
            }
        }
        assertSame(boom, thrown)
        assertEquals(3, cancelled.get())
    }

    @Test
    fun `a closed group refuses new forks and joins`() {
        loop.runSync {
            val group = loop.openGather<Int>()
            group.close()
            assertThrows(IllegalStateException::class.java) { group.fork { 1 } }
        }
    }

    @Test
    fun `a group joined and dropped without close leaves nothing attached to the loop`() {
        repeat(100) {
            val group = loop.openGather<Int>()
            val handle = group.fork { kotlinx.coroutines.yield(); it }
            loop.runSync { group.join() }
            assertEquals(it, handle.get())
        }
        // Found by the soak run: each such group left a job under the loop's supervisor for the loop's lifetime.
        awaitState("no job of a dropped group stays under the loop's supervisor") {
            loop.supervisorJob.children.count() == 0
        }
    }

    @Test
    fun `close on a plain thread blocks until the running calls have ended`() {
        repeatRounds(5) {
            val scope = loop.openGather<String>()
            val gate = CompletableDeferred<Unit>()
            val finished = AtomicBoolean()
            scope.fork {
                try {
                    gate.await()
                    "done"
                } finally {
                    finished.set(true)
                }
            }
            val closer = thread(name = "scope-closer") { scope.close() }
            awaitState("the closer waits") { closer.state == Thread.State.WAITING || closer.state == Thread.State.TIMED_WAITING }
            assertFalse(finished.get(), "the call is still running while close waits")
            gate.complete(Unit)
            closer.join()
            assertTrue(finished.get(), "close returned only after the call ended")
            assertThrows(IllegalStateException::class.java) { scope.fork { "late" } }
        }
    }

    @Test
    fun `joinBlocking on a plain thread rethrows the first failure unchanged`() {
        val scope = loop.openGather<String>()
        val boom = IOException("boom")
        // The failing call waits for the other to have run: with a bare yield() its resumption raced this thread's
        // second fork into the loop's queue, and when it won, the scope cancelled the second call before it started.
        val okRan = CompletableDeferred<Unit>()
        scope.fork { okRan.await(); throw boom }
        val ok = scope.fork { okRan.complete(Unit); "fine" }
        assertSame(boom, assertThrows(IOException::class.java) { scope.joinBlocking() })
        scope.close() // the failure was thrown already: close does not throw it again
        assertEquals("fine", ok.get(), "the loop ran it to its end before the failing call resumed")
    }

    @Test
    fun `close in a coroutine after a join returns at once, without a re-entrant blocking call`() {
        LogCapture().use { log ->
            val result = loop.runSync {
                loop.openGather<Int>().use { scope ->
                    val a = scope.fork { yield(); 1 }
                    scope.join()
                    a.get()
                }
            }
            assertEquals(1, result)
            assertEquals(emptyList<String>(), log.messages(Level.WARNING), "no re-entry warning")
        }
    }
}
