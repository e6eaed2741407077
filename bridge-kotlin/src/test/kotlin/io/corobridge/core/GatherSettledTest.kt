package io.corobridge.core

import java.io.IOException
import java.util.Collections
import java.util.concurrent.atomic.AtomicInteger
import kotlinx.coroutines.CancellationException
import kotlinx.coroutines.CompletableDeferred
import kotlinx.coroutines.async
import kotlinx.coroutines.awaitCancellation
import kotlinx.coroutines.yield
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertNull
import org.junit.jupiter.api.Assertions.assertSame
import org.junit.jupiter.api.Assertions.assertThrows
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.extension.RegisterExtension

/** [gatherSettled]: every call runs to its end and each outcome comes back, in call order. */
class GatherSettledTest {
    @JvmField
    @RegisterExtension
    val loops = TestLoops()
    private val loop = loops.create("settled")

    @Test
    fun `outcomes come in call order, values and failures unchanged, whatever order the calls end in`() {
        val failure = IOException("disk gone")
        val gates = List(4) { CompletableDeferred<Unit>() }
        val ended = Collections.synchronizedList(ArrayList<Int>())
        val calls: List<suspend () -> String?> = listOf(
            { gates[0].await(); ended.add(0); "a" },
            { gates[1].await(); ended.add(1); throw failure },
            { gates[2].await(); ended.add(2); null },
            { ended.add(3); gates.reversed().forEach { it.complete(Unit); yield() }; "d" },
        )
        val outcomes = loop.runSync { gatherSettled(calls) }
        assertEquals(listOf(3, 2, 1, 0), ended, "the calls ended in reverse order")
        assertEquals(listOf(true, false, true, true), outcomes.map { it.isSuccess })
        assertEquals("a", outcomes[0].getOrThrow())
        assertSame(failure, outcomes[1].exceptionOrNull(), "the very exception the call threw")
        assertSame(failure, assertThrows(IOException::class.java) { outcomes[1].getOrThrow() })
        assertNull(outcomes[1].getOrNull())
        assertTrue(outcomes[2].isSuccess, "a null result is a success")
        assertNull(outcomes[2].getOrThrow())
        assertEquals(Outcome.success("d"), outcomes[3])
    }

    @Test
    fun `a failure cancels nothing - the other calls run to their end`() {
        repeatRounds(20) {
            val release = CompletableDeferred<Unit>()
            val cancelled = AtomicInteger()
            val slow: suspend () -> Int = {
                try {
                    release.await()
                    1
                } catch (e: CancellationException) {
                    cancelled.incrementAndGet()
                    throw e
                }
            }
            val calls: List<suspend () -> Int> = listOf(
                slow,
                { throw IllegalStateException("first") },
                slow,
                { yield(); throw IOException("second") },
                { yield(); yield(); release.complete(Unit); 5 },
            )
            val outcomes = loop.runSync { gatherSettled(calls) }
            assertEquals(0, cancelled.get(), "no call was cancelled")
            assertEquals(listOf(1, null, 1, null, 5), outcomes.map { it.getOrNull() })
            assertEquals("first", outcomes[1].exceptionOrNull()!!.message)
            assertEquals("second", outcomes[3].exceptionOrNull()!!.message)
        }
    }

    @Test
    fun `bounded, at most maxConcurrency calls run at once and every call still runs after failures`() {
        val running = AtomicInteger()
        val most = AtomicInteger()
        val calls = List(20) { index ->
            suspend {
                most.accumulateAndGet(running.incrementAndGet(), ::maxOf)
                try {
                    yield()
                    if (index % 3 == 0) throw IOException("call $index")
                    index
                } finally {
                    running.decrementAndGet()
                }
            }
        }
        val outcomes = loop.runSync { gatherSettled(calls, maxConcurrency = 3) }
        assertEquals(3, most.get(), "never more than 3 calls at once, and 3 at some point")
        assertEquals(20, outcomes.size)
        outcomes.forEachIndexed { index, outcome ->
            if (index % 3 == 0) assertEquals("call $index", outcome.exceptionOrNull()!!.message)
            else assertEquals(index, outcome.getOrThrow())
        }
    }

    @Test
    fun `a call's own CancellationException is its outcome, not the gather's end`() {
        val own = CancellationException("the call gave up by itself")
        val calls: List<suspend () -> Int> = listOf({ yield(); throw own }, { yield(); 2 })
        val outcomes = loop.runSync { gatherSettled(calls) }
        assertSame(own, outcomes[0].exceptionOrNull())
        assertEquals(2, outcomes[1].getOrThrow())
    }

    @Test
    fun `cancelling the gather cancels the running calls and starts no more`() {
        repeatRounds(10) {
            val running = CompletableDeferred<Unit>()
            val finallies = AtomicInteger()
            val started = AtomicInteger()
            val calls = List(6) {
                suspend {
                    started.incrementAndGet()
                    try {
                        running.complete(Unit)
                        awaitCancellation()
                    } finally {
                        finallies.incrementAndGet()
                    }
                }
            }
            val future = loop.runAsync(gatherSettledCall(calls.map { io.corobridge.core.internal.CallBodies.asCall(it) }, 2))
            loop.runSync { running.await() }
            future.cancel(false)
            // The future is cancelled at once; the calls finish cancelling on the loop, before this next call.
            loop.runSync { yield() }
            assertTrue(future.isCancelled)
            assertEquals(2, started.get(), "only the 2 calls the bound let in started")
            assertEquals(2, finallies.get(), "both were cancelled and finished")
        }
    }

    @Test
    fun `a coroutine that gathers and is cancelled gets CancellationException, not outcomes`() {
        val inside = CompletableDeferred<Unit>()
        val thrown = loop.runSync {
            val job = loop.scope.async {
                gatherSettled(listOf<suspend () -> Unit>({ inside.complete(Unit); awaitCancellation() }))
            }
            inside.await()
            job.cancel()
            runCatching { job.await() }.exceptionOrNull()
        }
        assertTrue(thrown is CancellationException, "was $thrown")
    }

    @Test
    fun `bad input is refused where it is given`() {
        val error = assertThrows(IllegalArgumentException::class.java) { gatherSettledCall(listOf<SuspendCall<Int>>(), 0) }
        assertEquals("maxConcurrency must be at least 1, was 0", error.message)
        assertEquals(emptyList<Outcome<Int>>(), loop.runSync { gatherSettled(emptyList<suspend () -> Int>()) })
    }

    @Test
    fun `outcomes compare by value, or by the very exception`() {
        val failure = IOException("x")
        assertEquals(Outcome.success(1), Outcome.success(1))
        assertEquals(Outcome.success<String?>(null), Outcome.success<String?>(null))
        assertEquals(Outcome.failure<Int>(failure), Outcome.failure<Int>(failure))
        assertFalse(Outcome.failure<Int>(failure) == Outcome.failure<Int>(IOException("x")))
        assertFalse(Outcome.success<Any?>(null) == Outcome.failure<Any?>(failure))
        assertEquals("Success(1)", Outcome.success(1).toString())
        assertEquals("Failure(java.io.IOException: x)", Outcome.failure<Int>(failure).toString())
        assertTrue(Outcome.failure<Int>(failure).isFailure)
    }
}
