package io.corobridge.core

import java.io.IOException
import java.util.Collections
import java.util.concurrent.TimeoutException
import java.util.concurrent.atomic.AtomicInteger
import kotlin.coroutines.Continuation
import kotlin.coroutines.intrinsics.COROUTINE_SUSPENDED
import kotlin.time.Duration.Companion.milliseconds
import kotlinx.coroutines.CancellationException
import kotlinx.coroutines.CompletableDeferred
import kotlinx.coroutines.awaitCancellation
import kotlinx.coroutines.launch
import kotlinx.coroutines.yield
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertSame
import org.junit.jupiter.api.Assertions.assertThrows
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.extension.RegisterExtension

class GatherTest {
    @JvmField
    @RegisterExtension
    val loops = TestLoops()
    private val loop = loops.create("gather")

    /** Keeps the calling thread busy (not suspended, not parked) for [micros] microseconds. */
    private fun busyFor(micros: Long) {
        val until = System.nanoTime() + micros * 1_000
        while (System.nanoTime() - until < 0) Thread.onSpinWait()
    }

    /**
     * Gathers 100 calls that each keep the loop busy for 200 µs before they suspend (or, with [suspending]
     * false, before they return), with a probe task queued on the loop just before; returns how many calls
     * had started when the probe ran. A gather that started every call inside one loop task would hold the
     * loop for 20 ms and let the probe run only after the 100th.
     */
    private fun callsStartedBeforeProbe(maxConcurrency: Int, suspending: Boolean): Int {
        val started = AtomicInteger()
        val gate = CompletableDeferred<Unit>()
        val calls = List(100) {
            suspend {
                started.incrementAndGet()
                busyFor(200)
                if (suspending) gate.await()
            }
        }
        return loop.runSync {
            var seen = -1
            loop.scope.launch(start = kotlinx.coroutines.CoroutineStart.DEFAULT) {
                seen = started.get()
                gate.complete(Unit)
            }
            gather(calls, maxConcurrency)
            seen
        }
    }

    @Test
    fun `a large gather does not hold the loop in one task while it starts its calls`() {
        repeatRounds(3) {
            val seen = callsStartedBeforeProbe(Int.MAX_VALUE, suspending = true)
            assertTrue(seen in 0 until 50, "the probe ran only after $seen of 100 calls had started")
        }
    }

    @Test
    fun `a bounded gather of calls that never suspend still lets other tasks run`() {
        repeatRounds(3) {
            val seen = callsStartedBeforeProbe(4, suspending = false)
            assertTrue(seen in 0 until 50, "the probe ran only after $seen of 100 calls had started")
        }
    }

    @Test
    fun `results come in call order whatever order the calls finish in`() {
        val gates = List(5) { CompletableDeferred<Unit>() }
        val finished = Collections.synchronizedList(ArrayList<Int>())
        val calls = List(5) { i ->
            suspend {
                gates[i].await()
                finished.add(i)
                if (i > 0) gates[i - 1].complete(Unit) // finish from the last call to the first
                "call-$i"
            }
        }
        val results = loop.runSync {
            gates[4].complete(Unit)
            gather(calls)
        }
        assertEquals(listOf("call-0", "call-1", "call-2", "call-3", "call-4"), results)
        assertEquals(listOf(4, 3, 2, 1, 0), finished, "they really finished in reverse")
    }

    @Test
    fun `null results are kept in their places and an empty gather is empty`() {
        val results = loop.runSync { gather(listOf(suspend { "a" }, suspend { yield(); null }, suspend { "c" })) }
        assertEquals(listOf("a", null, "c"), results)
        assertEquals(emptyList<String>(), loop.runSync { gather(emptyList<suspend () -> String>()) })
    }

    @Test
    fun `the first failure cancels the siblings and is rethrown unchanged`() {
        repeatRounds(10) {
            val boom = IOException("first")
            val cancelled = AtomicInteger()
            val allStarted = CompletableDeferred<Unit>()
            val started = AtomicInteger()
            val siblings = List(5) {
                suspend {
                    try {
                        if (started.incrementAndGet() == 5) allStarted.complete(Unit)
                        awaitCancellation()
                    } catch (e: CancellationException) {
                        cancelled.incrementAndGet()
                        throw e
                    }
                }
            }
            val failing: suspend () -> String = {
                allStarted.await()
                throw boom
            }
            val thrown = assertThrows(IOException::class.java) { loop.runSync { gather(siblings + failing) } }
            assertSame(boom, thrown, "the very exception the call threw")
            assertEquals(5, cancelled.get(), "every sibling saw its cancellation")
            assertTrue(thrown.suppressed.none { it is CancellationException }, "no sibling cancellation attached")
        }
    }

    @Test
    fun `other failures are attached as suppressed`() {
        val first = IllegalStateException("first")
        val second = IOException("failed while being cancelled")
        val started = CompletableDeferred<Unit>()
        val calls = listOf<suspend () -> String>(
            {
                try {
                    started.complete(Unit)
                    awaitCancellation()
                } catch (e: CancellationException) {
                    throw second
                }
            },
            {
                started.await()
                throw first
            },
        )
        val thrown = assertThrows(IllegalStateException::class.java) { loop.runSync { gather(calls) } }
        assertSame(first, thrown)
        assertTrue(thrown.suppressed.any { it === second }, "suppressed: ${thrown.suppressed.toList()}")
    }

    @Test
    fun `a bound of 8 over 10,000 calls never has more than 8 in flight`() {
        val most = AtomicInteger()
        val results = loop.runSync { gather(countingCalls(10_000, most), maxConcurrency = 8) }
        assertEquals((0 until 10_000).toList(), results)
        assertEquals(8, most.get(), "the bound was reached and never passed")
    }

    @Test
    fun `an unbounded gather of 10,000 runs them all at once`() {
        // Each call waits until all 10,000 are in flight: only a gather with no bound can finish.
        val inFlight = AtomicInteger()
        val allStarted = CompletableDeferred<Unit>()
        val calls = List(10_000) { i ->
            suspend {
                if (inFlight.incrementAndGet() == 10_000) allStarted.complete(Unit)
                allStarted.await()
                i
            }
        }
        assertEquals(10_000, loop.runSync { gather(calls) }.size)
    }

    /** [n] calls that each suspend once; [most] ends as the largest number in flight at once. */
    private fun countingCalls(n: Int, most: AtomicInteger): List<suspend () -> Int> {
        val inFlight = AtomicInteger()
        return List(n) { i ->
            suspend {
                most.accumulateAndGet(inFlight.incrementAndGet(), ::maxOf)
                yield()
                inFlight.decrementAndGet()
                i
            }
        }
    }

    @Test
    fun `cancelling the gather cancels every call and waits for them`() {
        val started = AtomicInteger()
        val cancelled = AtomicInteger()
        val calls = List(20) {
            suspend {
                try {
                    started.incrementAndGet()
                    awaitCancellation()
                } finally {
                    cancelled.incrementAndGet()
                }
            }
        }
        assertThrows(TimeoutException::class.java) { loop.runSync(50.milliseconds) { gather(calls) } }
        // Every call that started has finished cancelling (a gather still queued at the deadline starts none).
        assertEquals(started.get(), cancelled.get())
        assertTrue(started.get() == 0 || started.get() == 20, "all calls start together: ${started.get()}")
    }

    @Test
    fun `continuation-passing calls gather the same way`() {
        val calls = listOf(
            object : SuspendCall<String> {
                override fun invoke(continuation: Continuation<String>): Any = "direct"
            },
            object : SuspendCall<String> {
                override fun invoke(continuation: Continuation<String>): Any {
                    Thread { continuation.resumeWith(Result.success("resumed")) }.start()
                    return COROUTINE_SUSPENDED
                }
            },
        )
        assertEquals(listOf("direct", "resumed"), loop.runSync(gatherCall(calls)))
    }

    @Test
    fun `a bound below 1 is rejected`() {
        val thrown = assertThrows(IllegalArgumentException::class.java) { gatherCall(emptyList<SuspendCall<Int>>(), 0) }
        assertEquals("maxConcurrency must be at least 1, was 0", thrown.message)
        assertThrows(IllegalArgumentException::class.java) {
            loop.runSync { gather(listOf(suspend { 1 }), maxConcurrency = -1) }
        }
    }
}
