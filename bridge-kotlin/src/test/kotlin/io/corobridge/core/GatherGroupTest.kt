package io.corobridge.core

import java.io.IOException
import java.util.concurrent.atomic.AtomicInteger
import kotlinx.coroutines.CompletableDeferred
import kotlinx.coroutines.awaitCancellation
import kotlinx.coroutines.yield
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertSame
import org.junit.jupiter.api.Assertions.assertThrows
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.extension.RegisterExtension

/** [GatherGroup] from coroutine code: fork, suspend join and close. */
class GatherGroupTest {
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
}
