package io.corobridge.core

import java.time.Duration
import java.util.Collections
import kotlin.time.Duration.Companion.milliseconds
import kotlinx.coroutines.CoroutineStart
import kotlinx.coroutines.joinAll
import kotlinx.coroutines.launch
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertThrows
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.extension.RegisterExtension

/** [ConcurrencyLimits.createRate]: at most N per second over time, a burst at once, in the order asked. */
class RateLimitTest {
    @JvmField
    @RegisterExtension
    val loops = TestLoops()
    private val loop = loops.create("rates")

    @Test
    fun `passes come no faster than the rate after the burst`() {
        loop.limits.createRate("api", perSecond = 100.0, burst = 4)
        val passed = Collections.synchronizedList(ArrayList<Pair<Int, Long>>())
        loop.runSync {
            List(20) { n ->
                loop.scope.launch(start = CoroutineStart.UNDISPATCHED) {
                    loop.limits.rateLimit("api")
                    passed += n to System.nanoTime()
                }
            }.joinAll()
        }
        assertEquals((0 until 20).toSet(), passed.map { it.first }.toSet(), "every caller passed")
        val times = passed.map { it.second }.sorted()
        val start = times.first()
        val intervalNanos = 10_000_000L
        for ((index, at) in times.withIndex()) {
            // The first 4 may pass at once; each later one at least one interval after the one 4 places before it.
            val earliest = (index - 3) * intervalNanos
            assertTrue(at - start >= earliest - 5_000_000, "pass $index came ${(at - start) / 1e6} ms in, before ${earliest / 1e6} ms")
        }
    }

    @Test
    fun `turns are given in the order callers ask`() {
        val limiter = io.corobridge.core.internal.RateLimiter(perSecond = 1.0, burst = 2)
        val waits = List(6) { limiter.reserve(Long.MAX_VALUE) }
        assertEquals(listOf(0L, 0L), waits.take(2), "the burst passes at once")
        for (k in 2 until 6) {
            // Each later turn about one second after the one before: reserved in order, never shared.
            assertTrue(waits[k] - waits[k - 1] in 900_000_000L..1_000_000_000L, "turn $k: ${waits}")
        }
    }

    @Test
    fun `a caller whose turn lies beyond its timeout fails at once and takes nothing`() {
        loop.limits.createRate("slow", perSecond = 1.0)
        loop.limits.rateLimitBlocking(Duration.ofSeconds(5), "slow") // the burst of 1
        val started = System.nanoTime()
        val refused = assertThrows(ConcurrencyLimitTimeoutException::class.java) {
            loop.limits.rateLimitBlocking(Duration.ofMillis(100), "slow")
        }
        assertTrue(System.nanoTime() - started < 500_000_000, "refused at once, not after waiting")
        assertTrue(refused.message!!.contains("rate limit \"slow\" (1.0 per second, burst 1) would not let this pass within PT0.1S; nothing was taken"), refused.message)
        val suspended = assertThrows(ConcurrencyLimitTimeoutException::class.java) {
            loop.runSync { loop.limits.rateLimit("slow", timeout = 100.milliseconds) }
        }
        assertEquals("slow", suspended.tag)
        // Had the refused callers reserved their turns, this one would wait about 3 s, not about 1 s.
        val next = System.nanoTime()
        loop.limits.rateLimitBlocking(Duration.ofSeconds(5), "slow")
        assertTrue(System.nanoTime() - next < 1_900_000_000L, "the refused callers took no turn")
    }

    @Test
    fun `bad input and misuse are named`() {
        val unknown = assertThrows(IllegalArgumentException::class.java) { loop.limits.rateLimitBlocking(Duration.ofSeconds(1), "nope") }
        assertEquals("unknown rate limit \"nope\"; known: none (define one with createRate)", unknown.message)
        assertThrows(IllegalArgumentException::class.java) { loop.limits.createRate("x", 0.0) }
        assertThrows(IllegalArgumentException::class.java) { loop.limits.createRate("x", Double.NaN) }
        val tiny = assertThrows(IllegalArgumentException::class.java) { loop.limits.createRate("x", 4.9E-324) }
        assertTrue(tiny.message!!.contains("perSecond must be at least one a year"), tiny.message)
        val burst = assertThrows(IllegalArgumentException::class.java) { loop.limits.createRate("x", 1.0, burst = 0) }
        assertEquals("burst must be at least 1, was 0 for tag \"x\"", burst.message)
        loop.limits.createRate("x", 1.0)
        val onLoop = assertThrows(IllegalStateException::class.java) {
            loop.runSync { loop.limits.rateLimitBlocking(Duration.ofSeconds(1), "x") }
        }
        assertTrue(onLoop.message!!.contains("loop thread"), onLoop.message)
    }

    @Test
    fun `an interrupted blocking caller stops waiting and keeps the flag`() {
        loop.limits.createRate("once", perSecond = 0.01) // one now, the next in 100 s
        loop.limits.rateLimitBlocking(Duration.ofSeconds(1), "once")
        val outcome = java.util.concurrent.atomic.AtomicReference<Any>()
        val waiter = Thread({
            try {
                loop.limits.rateLimitBlocking(Duration.ofSeconds(500), "once")
                outcome.set("passed")
            } catch (e: java.util.concurrent.CancellationException) {
                outcome.set(Thread.currentThread().isInterrupted)
            }
        }, "rate-waiter")
        waiter.start()
        while (waiter.state != Thread.State.TIMED_WAITING) Thread.onSpinWait()
        waiter.interrupt()
        waiter.join()
        assertEquals(true, outcome.get())
    }
}
