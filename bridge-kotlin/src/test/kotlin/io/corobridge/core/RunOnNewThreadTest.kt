package io.corobridge.core

import java.io.IOException
import java.util.concurrent.TimeoutException
import java.util.concurrent.atomic.AtomicBoolean
import kotlin.time.Duration.Companion.milliseconds
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.awaitCancellation
import kotlinx.coroutines.withContext
import kotlinx.coroutines.yield
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertInstanceOf
import org.junit.jupiter.api.Assertions.assertNotEquals
import org.junit.jupiter.api.Assertions.assertSame
import org.junit.jupiter.api.Assertions.assertThrows
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.extension.RegisterExtension

/** [RunOn.NEW_THREAD]: each call runs on a thread of its own, and keeps every other promise of runSync. */
class RunOnNewThreadTest {
    @JvmField
    @RegisterExtension
    val loops = TestLoops()
    private val loop = loops.create("fresh")

    @Test
    fun `each call runs on a new thread of its own, which is gone when the call returns`() {
        val me = Thread.currentThread()
        val seen = List(3) {
            loop.runSync(RunOn.NEW_THREAD) {
                val first = Thread.currentThread()
                withContext(Dispatchers.IO) { yield() } // a resumption from another thread comes back here
                assertSame(first, Thread.currentThread())
                first
            }
        }
        assertEquals(3, seen.toSet().size, "a thread per call")
        for (thread in seen) {
            assertTrue(thread.name.startsWith("corobridge-loop-fresh-call-"), thread.name)
            assertNotEquals(me, thread)
            assertNotEquals(loop.thread, thread)
            thread.join()
            assertFalse(thread.isAlive)
        }
    }

    @Test
    fun `exceptions cross unchanged, checked ones included, with the caller's frames attached`() {
        val checked = IOException("disk gone")
        val thrown = assertThrows(IOException::class.java) {
            loop.runSync<Unit>(RunOn.NEW_THREAD) { yield(); throw checked }
        }
        assertSame(checked, thrown)
        val callerSide = thrown.suppressed.filterIsInstance<CalledFrom>().last()
        assertEquals(Thread.currentThread().name, callerSide.threadName)
        assertTrue(
            callerSide.stackTrace.any { it.className == RunOnNewThreadTest::class.java.name },
            "the caller's frames: ${callerSide.stackTrace.toList()}",
        )
    }

    @Test
    fun `an interrupt cancels the call and returns after its finally block, with the flag set again`() {
        assertInterruptCancelsAndWaitsForFinally(loop, rounds = 10, runOn = RunOn.NEW_THREAD)
    }

    @Test
    fun `a timeout cancels the call and throws TimeoutException once it has finished cancelling`() {
        val finallyRan = AtomicBoolean()
        assertThrows(TimeoutException::class.java) {
            loop.runSync(RunOn.NEW_THREAD, 50.milliseconds) {
                try {
                    awaitCancellation()
                } finally {
                    finallyRan.set(true)
                }
            }
        }
        assertTrue(finallyRan.get(), "the call finished cancelling before the caller got its TimeoutException")
    }

    @Test
    fun `the caller's carried context and its loop's limits are there on the new thread`() {
        val requestId = ThreadLocal<String?>()
        val carrier = ContextCarrier.of(requestId)
        ContextPropagation.register(carrier)
        try {
            requestId.set("from-the-caller")
            loop.limits.create("fresh-db", 1)
            val seen = loop.runSync(RunOn.NEW_THREAD) {
                withConcurrencyLimit("fresh-db") { yield(); requestId.get() }
            }
            assertEquals("from-the-caller", seen)
        } finally {
            requestId.remove()
            ContextPropagation.unregister(carrier)
        }
    }

    @Test
    fun `on the loop thread the re-entry policy applies, never a deadlock`() {
        loop.reentryPolicy = ReentryPolicy.FAIL
        val refused = loop.runSync { runCatching { loop.runSync(RunOn.NEW_THREAD) { "ran" } }.exceptionOrNull() }
        assertInstanceOf(IllegalStateException::class.java, refused)
        assertTrue(refused!!.message!!.contains("would deadlock"), refused.message)
    }

    @Test
    fun `a closed loop refuses the call before starting a thread`() {
        val closed = loops.create("fresh-closed")
        closed.close()
        val before = liveThreads("corobridge-loop-fresh-closed-call-").size
        assertThrows(IllegalStateException::class.java) { closed.runSync<String>(RunOn.NEW_THREAD) { "ran" } }
        assertEquals(before, liveThreads("corobridge-loop-fresh-closed-call-").size)
    }
}
