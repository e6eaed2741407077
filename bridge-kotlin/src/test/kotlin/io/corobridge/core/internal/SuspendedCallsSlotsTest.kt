package io.corobridge.core.internal

import io.corobridge.core.RunSyncLoop
import io.corobridge.core.TestLoops
import java.util.concurrent.CyclicBarrier
import java.util.concurrent.atomic.AtomicBoolean
import java.util.concurrent.atomic.AtomicReference
import kotlin.concurrent.thread
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.extension.RegisterExtension

/**
 * The slots of SuspendedCalls, driven directly: this test's thread plays the loop thread (the only writer),
 * with calls that are never submitted (a call ends when it is rejected, having never started).
 */
class SuspendedCallsSlotsTest {
    @JvmField
    @RegisterExtension
    val loops = TestLoops()

    private fun calls(loop: RunSyncLoop, n: Int) = List(n) { BlockingCall<Int>(loop, Any()) }

    private fun LoopCall<*>.end() = reject(java.util.concurrent.CancellationException("ended by the test"))

    /** Compared by size and by what is missing or extra, so that a failure does not print a thousand calls. */
    private fun assertSameCalls(expected: Collection<LoopCall<*>>, actual: Set<LoopCall<*>>) {
        val missing = expected.count { it !in actual }
        val extra = actual.count { it !in expected }
        assertTrue(missing == 0 && extra == 0, "expected ${expected.size}, walked ${actual.size}: $missing missing, $extra extra")
    }

    private fun SuspendedCalls.unfinished(): Set<LoopCall<*>> =
        mutableSetOf<LoopCall<*>>().also { seen -> forEachUnfinished { seen.add(it) } }

    @Test
    fun `the slots grow for calls suspended at once, reuse the slots of ended calls, and shrink once idle`() {
        val loop = loops.create("slots")
        val list = SuspendedCalls()
        val first = calls(loop, 1000)
        first.forEach(list::add)
        assertSameCalls(first, list.unfinished())
        // Half of them end; 500 more come: the walk sees exactly the calls that have not ended.
        first.filterIndexed { i, _ -> i % 2 == 0 }.forEach { it.end() }
        val second = calls(loop, 500)
        second.forEach(list::add)
        val live = first.filterIndexed { i, _ -> i % 2 == 1 } + second
        assertSameCalls(live, list.unfinished())
        assertTrue(list.linkedCount <= 2 * 1500, "held ${list.linkedCount}")
        // Every call ends and the loop goes idle: the list lets go of them and of its large array.
        live.forEach { it.end() }
        list.sweepIfAdded()
        assertEquals(0, list.linkedCount)
        assertTrue(list.unfinished().isEmpty())
        // Calls one after another (each ends before the next is added) stay within the minimum slots.
        repeat(10_000) {
            val call = calls(loop, 1).single()
            list.add(call)
            call.end()
        }
        assertTrue(list.linkedCount <= 64, "held ${list.linkedCount} ended calls")
    }

    @Test
    fun `a call that ends while it is the last one added leaves its slot at once, any other waits for a sweep`() {
        val loop = loops.create("last")
        val list = SuspendedCalls()
        // One at a time, as one caller makes them: no ended call stays, so none is ever read again.
        repeat(10_000) {
            val call = calls(loop, 1).single()
            list.add(call)
            call.end()
            list.removeIfLast(call)
            assertEquals(0, list.linkedCount, "ended calls held after $it calls")
        }
        // Two suspended at once: the first to end is not the last one added, and stays until a sweep.
        val (first, second) = calls(loop, 2)
        list.add(first)
        list.add(second)
        first.end()
        list.removeIfLast(first)
        assertEquals(2, list.linkedCount, "only the last call added leaves at once")
        second.end()
        list.removeIfLast(second)
        assertEquals(1, list.linkedCount)
        list.sweepIfAdded()
        assertEquals(0, list.linkedCount)
        // A sweep forgets which call came last: one added before it is not looked for in another's slot.
        val (before, after) = calls(loop, 2)
        list.add(before)
        list.sweepIfAdded()
        list.add(after)
        before.end()
        list.removeIfLast(before)
        assertSameCalls(listOf(after), list.unfinished())
        assertEquals(2, list.linkedCount, "the call added before the sweep stays until the next one")
        after.end()
        list.removeIfLast(after)
        assertEquals(1, list.linkedCount)
    }

    @Test
    fun `a walker on another thread meets every call that stays unfinished, while the loop adds, ends and moves calls`() {
        val loop = loops.create("walk")
        repeat(20) { round ->
            val list = SuspendedCalls()
            // Calls that stay unfinished throughout, registered among others that come and go.
            val sticky = calls(loop, 40)
            val churn = ArrayDeque<BlockingCall<Int>>()
            for (call in sticky) {
                list.add(call)
                repeat(3) { calls(loop, 1).single().also { churn.add(it); list.add(it) } }
            }
            val stop = AtomicBoolean()
            val failure = AtomicReference<Throwable>()
            val start = CyclicBarrier(2)
            val walker = thread(name = "walker-$round") {
                start.await()
                var walks = 0
                while (!stop.get() || walks < 100) {
                    val seen = list.unfinished()
                    val missed = sticky.filterNot { it in seen }
                    if (missed.isNotEmpty()) {
                        failure.compareAndSet(null, AssertionError("walk $walks missed ${missed.size} unfinished calls"))
                        return@thread
                    }
                    walks++
                }
            }
            start.await()
            // The loop's side: calls end and new ones come, in bursts that fill, clear, grow and replace the slots.
            repeat(20_000) { i ->
                if (i % 500 < 250) {
                    calls(loop, 1).single().also { churn.add(it); list.add(it) }
                } else {
                    churn.removeFirstOrNull()?.end()
                }
                if (i % 1000 == 999) {
                    churn.forEach { it.end() }
                    churn.clear()
                    list.sweepIfAdded()
                }
            }
            stop.set(true)
            walker.join()
            failure.get()?.let { throw it }
            assertSameCalls(sticky, list.unfinished())
            sticky.forEach { it.end() }
        }
    }
}
