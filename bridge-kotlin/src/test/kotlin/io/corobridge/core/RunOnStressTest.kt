package io.corobridge.core

import java.util.concurrent.CancellationException
import java.util.concurrent.CyclicBarrier
import java.util.concurrent.ThreadLocalRandom
import java.util.concurrent.TimeUnit
import java.util.concurrent.atomic.AtomicInteger
import java.util.concurrent.atomic.AtomicReference
import kotlin.concurrent.thread
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.delay
import kotlinx.coroutines.withContext
import kotlinx.coroutines.yield
import org.junit.jupiter.api.AfterEach
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Test

/**
 * Calls on the loop, on their callers' threads (RunOn.CALLER_THREAD) and on threads of their own
 * (RunOn.NEW_THREAD), spinning and parked callers, mixed
 * with interrupts and a close at a random moment: every caller gets its value or a clear refusal, never a hang,
 * and no thread outlives the loop. Exercises the loop's list of suspended calls and the caller-thread event
 * loops where they race with closing.
 *
 * Slow and racy by design: runs in the stress profile only.
 */
class RunOnStressTest {
    @AfterEach
    fun noThreadsLeft() {
        awaitState("the stress loops' threads end") { liveThreads("corobridge-loop-mixed-").isEmpty() }
    }

    @Test
    fun `mixed callers, interrupts and a racing close, and every caller is answered`() {
        val outcomes = java.util.concurrent.ConcurrentHashMap<String, AtomicInteger>()
        repeatRounds(300) { round ->
            val loop = RunSyncLoop.create("mixed-$round")
            loop.closing.closeGraceNanos = TimeUnit.SECONDS.toNanos(2)
            if (round % 2 == 0) loop.waitStrategy = WaitStrategy.PARK
            val callers = 6
            val start = CyclicBarrier(callers + 1)
            val failure = AtomicReference<Throwable>()
            // The close comes after a random number of calls, from none to half of them.
            val progress = java.util.concurrent.CountDownLatch(ThreadLocalRandom.current().nextInt(callers * 100))
            val threads = (0 until callers).map { id ->
                thread(name = "mixed-caller-$id") {
                    try {
                        start.await()
                        repeat(200) { i ->
                            val runOn = when ((id + i) % 3) {
                                0 -> RunOn.CALLER_THREAD
                                1 -> RunOn.LOOP
                                else -> RunOn.NEW_THREAD
                            }
                            val outcome = try {
                                val got = loop.runSync(runOn) {
                                    when (i % 4) {
                                        0 -> yield()
                                        1 -> withContext(Dispatchers.IO) { yield() }
                                        2 -> delay(1)
                                        else -> Unit
                                    }
                                    i
                                }
                                check(got == i) { "call $i of caller $id got $got" }
                                "value"
                            } catch (e: CancellationException) {
                                Thread.interrupted() // an interrupt meant for this call; the next one starts clean
                                "cancelled"
                            } catch (e: IllegalStateException) {
                                check(e.message!!.contains("closed")) { "unexpected: $e" }
                                "refused"
                            }
                            outcomes.computeIfAbsent(outcome) { AtomicInteger() }.incrementAndGet()
                            progress.countDown()
                        }
                    } catch (e: Throwable) {
                        failure.compareAndSet(null, e)
                    }
                }
            }
            start.await()
            progress.await(30, TimeUnit.SECONDS)
            val random = ThreadLocalRandom.current()
            repeat(random.nextInt(4)) { threads[random.nextInt(callers)].interrupt() }
            if (random.nextBoolean()) Thread.yield()
            loop.close()
            threads.forEach { caller ->
                caller.join(TimeUnit.SECONDS.toMillis(30))
                if (caller.isAlive) {
                    throw AssertionError("caller ${caller.name} still waits 30 s after close:\n" +
                        caller.stackTrace.joinToString("\n"))
                }
            }
            failure.get()?.let { throw it }
        }
        // The test is meaningful only if the races happened: calls answered, cancelled and refused.
        assertEquals(setOf("value", "cancelled", "refused"), outcomes.keys, outcomes.toString())
    }
}
