package io.corobridge.core

import java.time.Duration
import java.util.concurrent.CancellationException
import java.util.concurrent.CountDownLatch
import java.util.concurrent.TimeUnit
import java.util.concurrent.atomic.AtomicReference
import kotlin.concurrent.thread
import kotlinx.coroutines.awaitCancellation
import kotlinx.coroutines.yield
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertInstanceOf
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.extension.RegisterExtension

/**
 * A blocking call that suspends on the loop thread while its caller is still spinning is known to the loop
 * only through its list of suspended calls (not as a child of the supervisor, which the caller would make it
 * only on parking): closing must still cancel it, and the list must not keep calls that ended.
 */
class SuspendedCallsTest {
    @JvmField
    @RegisterExtension
    val loops = TestLoops()
    /** Callers spin for a second before parking, so a close within that second meets an unattached call. */
    private fun spinningLoop(name: String) = RunSyncLoop.create(name).also {
        it.waitStrategy = WaitStrategy.adaptive(Duration.ofSeconds(1), Duration.ZERO)
    }

    @Test
    fun `closing cancels a suspended call whose caller has not parked, and the caller hears why`() {
        assumeCallersCanSpin()
        repeatRounds(20) {
            val loop = spinningLoop("suspended")
            val suspended = CountDownLatch(1)
            val thrown = AtomicReference<Throwable>()
            val answeredAfter = AtomicReference<Long>()
            val caller = thread {
                val start = System.nanoTime()
                try {
                    loop.runSync {
                        suspended.countDown()
                        awaitCancellation()
                    }
                } catch (e: Throwable) {
                    thrown.set(e)
                }
                answeredAfter.set(System.nanoTime() - start)
            }
            suspended.await()
            loop.close()
            caller.join()
            assertInstanceOf(CancellationException::class.java, thrown.get())
            assertTrue(thrown.get().message!!.contains("closed"), thrown.get().message)
            // Answered while still spinning: the close found the call through the list. Without it the call would
            // be reached only when its caller gave up spinning (after 1 s) and made it a child of the supervisor.
            assertTrue(answeredAfter.get() < TimeUnit.MILLISECONDS.toNanos(900), "answered after ${answeredAfter.get() / 1_000_000} ms")
            assertNoThreads("corobridge-loop-suspended")
        }
    }

    @Test
    fun `the list lets go of calls that ended`() {
        RunSyncLoop.create("swept").use { loop ->
            repeat(10_000) { i -> check(loop.runSync { yield(); i } == i) }
            // At most one call was suspended at a time: what is still linked is bounded by the sweeps' slack.
            val linked = loop.runSync { loop.closing.suspendedCalls.linkedCount }
            assertTrue(linked <= 66, "calls still linked after 10,000 ended: $linked")
        }
    }

    @Test
    fun `a call that suspends and ends before the next one suspends leaves the list when it ends`() {
        // The loop spins up to a second when idle, so it does not park, and sweep, between these calls: only the
        // calls' own ending can empty their slots.
        RunSyncLoop.create("one-at-a-time").use { loop ->
            loop.waitStrategy = WaitStrategy.adaptive(Duration.ofSeconds(1), Duration.ofSeconds(1))
            repeat(100) { i -> check(loop.runSync { yield(); i } == i) }
            assertEquals(0, loop.runSync { loop.closing.suspendedCalls.linkedCount }, "ended calls still held")
        }
    }

    @Test
    fun `a closed loop lets go of the calls that suspended on it, though it never went idle`() {
        // Ended calls are swept when the loop parks; a loop that spins for a second when idle is closed before it
        // ever parks. It must not keep the ended call, nor through it the code (and class loader) that made it.
        val loop = RunSyncLoop.create("swept-at-end")
        loop.waitStrategy = WaitStrategy.adaptive(Duration.ofSeconds(1), Duration.ofSeconds(1))
        check(loop.runSync { yield(); "suspended once" } == "suspended once")
        loop.close()
        assertEquals(0, loop.closing.suspendedCalls.linkedCount, "calls a closed loop still holds")
    }

    private fun assumeCallersCanSpin() {
        org.junit.jupiter.api.Assumptions.assumeTrue(
            Runtime.getRuntime().availableProcessors() > 1,
            "on one processor callers never spin, so every call is attached when its caller parks",
        )
    }
}
