package io.corobridge.core.internal

import java.util.concurrent.atomic.AtomicInteger
import kotlin.concurrent.thread
import kotlin.coroutines.resume
import kotlinx.coroutines.CancellableContinuation
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.suspendCancellableCoroutine
import org.jetbrains.lincheck.Lincheck
import org.jetbrains.lincheck.datastructures.IntGen
import org.jetbrains.lincheck.datastructures.ModelCheckingOptions
import org.jetbrains.lincheck.datastructures.Operation
import org.jetbrains.lincheck.datastructures.Options
import org.jetbrains.lincheck.datastructures.Param
import org.jetbrains.lincheck.datastructures.StressOptions
import org.jetbrains.lincheck.datastructures.ThreadIdGen
import org.jetbrains.lincheck.datastructures.Validate
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Test

/*
 * Lincheck generates small scenarios of operations on one CapacityLimiter, runs them from several threads and
 * checks every outcome against a sequential model; model checking explores the interleavings at each
 * shared-memory access, stress testing runs on real threads.
 *
 * A release is only legal for a slot that is held, so the test counts what each thread holds (Lincheck passes
 * the thread's number through ThreadIdGen) and a thread releases only a slot it may release (see owner()); the
 * model keeps the same books. After every scenario the limiter's count of held slots must equal what the threads
 * hold, and nobody may wait while a slot is free: a slot lost in a hand-off, given to two callers, or not handed
 * to a waiter shows there even when no operation's result gave it away.
 *
 * Lincheck cancels some of the suspended acquire calls, so a slot handed to a waiter as it is cancelled must go
 * back (to the next waiter). The model is a separate class on purpose: by default Lincheck compares with the
 * limiter itself run sequentially, which would accept any consistent misbehaviour. First come, first served is
 * checked apart, by the two tests that fix the order in which the callers arrive.
 */
class CapacityLimiterLincheckStressTest {
    @Test
    fun `take, release and resize act as one counter in every interleaving`() =
        options(ModelCheckingOptions(), invocations = 500).check(Slots::class)

    @Test
    fun `take, release and resize act as one counter on real threads`() =
        options(StressOptions(), invocations = 2_000).check(Slots::class)

    /*
     * Smaller and fewer scenarios here: every step of a suspension is a step for the explorer, which makes each
     * schedule cost several times as much. With three operations per thread and two around them, 9,000 schedules
     * missed a waiter cancelled in the middle of its hand-off (a slot leak planted to try the test); with two and
     * one, they find it in seconds.
     */
    @Test
    fun `waiters get freed slots, and cancelled ones lose none, in every interleaving`() =
        options(ModelCheckingOptions(), iterations = 20, invocations = 300, actorsPerThread = 2, actorsAround = 1)
            .check(Waiters::class)

    @Test
    fun `waiters get freed slots, and cancelled ones lose none, on real threads`() =
        options(StressOptions(), invocations = 2_000).check(Waiters::class)

    /*
     * First come, first served cannot be read from results alone: a waiter's request is still pending while it
     * waits, so Lincheck may order it after a later caller's. Here the order is fixed: the first caller is seen
     * waiting before the second starts, and the slot is released while the second may still be arriving.
     */
    @Test
    fun `a parked waiter gets the released slot before a caller that came after it, in every interleaving`() =
        assertFirstComeFirstServed(invocations = 2_000) { limiter -> check(limiter.acquireBlocking()) }

    /** Fewer schedules: runBlocking makes each one cost three times as much. */
    @Test
    fun `a suspended waiter gets the released slot before a caller that came after it, in every interleaving`() =
        assertFirstComeFirstServed(invocations = 1_000) { limiter -> runBlocking { limiter.acquire() } }

    private fun assertFirstComeFirstServed(invocations: Int, acquire: (CapacityLimiter) -> Unit) =
        Lincheck.runConcurrentTest(invocations) {
            val limiter = CapacityLimiter(1)
            check(limiter.tryAcquire())
            val turns = AtomicInteger()
            var firstTurn = -1
            var secondTurn = -1
            val first = thread {
                acquire(limiter)
                firstTurn = turns.getAndIncrement()
                limiter.release()
            }
            // Not a sleep: Lincheck sees the spin and runs the other threads until the first caller waits.
            while (limiter.waitingCount == 0) Thread.onSpinWait()
            val second = thread {
                acquire(limiter)
                secondTurn = turns.getAndIncrement()
                limiter.release()
            }
            limiter.release()
            first.join()
            second.join()
            assertEquals(0, firstTurn, "the first waiter's turn")
            assertEquals(1, secondTurn, "the second caller's turn")
            assertEquals(0, limiter.heldCount, "slots held at the end")
            assertEquals(0, limiter.waitingCount, "callers waiting at the end")
        }

    /** Sized so that each test takes well under a minute on 2 cores; invocations cost most in model checking. */
    private fun <O : Options<O, *>> options(
        options: O,
        iterations: Int = 30,
        invocations: Int,
        actorsPerThread: Int = 3,
        actorsAround: Int = 2,
    ): O = options
        .iterations(iterations)
        .invocationsPerIteration(invocations)
        .threads(THREADS)
        .actorsPerThread(actorsPerThread)
        .actorsBefore(actorsAround)
        .actorsAfter(actorsAround)
        .sequentialSpecification(LimiterModel::class.java)

    /** The limiter, what each thread holds, and the operations both targets share. */
    internal abstract class Target {
        protected val limiter = CapacityLimiter(INITIAL_SLOTS)

        /** Slots held, by Lincheck thread number: 0 runs the scenario's start, the last one its end. */
        protected val held = IntArray(MAX_THREADS)

        /** Releases a slot this thread may release (see [owner]); false, doing nothing, if there is none. */
        @Operation
        fun release(@Param(gen = ThreadIdGen::class) thread: Int): Boolean {
            val owner = owner(held, thread)
            if (owner < 0) return false
            held[owner]--
            limiter.release()
            return true
        }

        @Operation
        fun setTotalSlots(@Param(gen = IntGen::class, conf = "1:3") slots: Int) {
            limiter.totalSlots = slots
        }

        @Validate
        fun noSlotLostOrGivenTwice() {
            check(limiter.heldCount == held.sum()) {
                "the limiter counts ${limiter.heldCount} slots held, the callers hold ${held.sum()}"
            }
            check(limiter.waitingCount == 0 || limiter.heldCount >= limiter.totalSlots) {
                "${limiter.waitingCount} waiting while ${limiter.heldCount} of ${limiter.totalSlots} slots are held"
            }
        }
    }

    /** Everything but waiting: nobody ever waits here, so every call is a CAS on the one state word. */
    internal class Slots : Target() {
        @Operation
        fun tryAcquire(@Param(gen = ThreadIdGen::class) thread: Int): Boolean =
            limiter.tryAcquire().also { if (it) held[thread]++ }

        @Operation
        fun resizeIfIdle(@Param(gen = IntGen::class, conf = "0:3") slots: Int): Int = limiter.resizeIfIdle(slots)

        @Operation
        fun heldCount(): Int = limiter.heldCount
    }

    /**
     * Waiting, with releasing and raising or lowering the number of slots around it.
     *
     * tryAcquire, heldCount and resizeIfIdle are left out on purpose: they are not linearizable while a slot is
     * being handed to a waiter. The hand-off counts the slot as held before it lowers `waiting`, and a slot handed
     * to a waiter that is cancelled in the same instant stays counted until the handing thread gives it back; in
     * both moments tryAcquire refuses although the slot is free, and heldCount counts it. Nothing is lost: a refused
     * caller goes on to wait and gets the slot. acquire begins with the same fast path, and an extra wait that ends
     * in cancellation is allowed by Lincheck, so it is checked here; the first target checks the others exactly.
     */
    internal class Waiters : Target() {
        @Operation(cancellableOnSuspension = true)
        suspend fun acquire(@Param(gen = ThreadIdGen::class) thread: Int) {
            limiter.acquire()
            held[thread]++
        }
    }

    /** A counter of held slots and a FIFO queue of waiters, changed one call at a time. */
    class LimiterModel {
        private var slots = INITIAL_SLOTS
        private var heldTotal = 0
        private val held = IntArray(MAX_THREADS)
        private val waiters = ArrayDeque<CancellableContinuation<Unit>>()

        fun tryAcquire(thread: Int): Boolean {
            if (slots == 0) throw CapacityLimiter.Off()
            if (waiters.isNotEmpty() || heldTotal >= slots) return false
            heldTotal++
            held[thread]++
            return true
        }

        suspend fun acquire(thread: Int) {
            if (slots == 0) throw CapacityLimiter.Off()
            if (waiters.isEmpty() && heldTotal < slots) {
                heldTotal++
            } else {
                // The slot is counted as held when it is handed over, in grant().
                suspendCancellableCoroutine<Unit> { waiter ->
                    waiters.addLast(waiter)
                    waiter.invokeOnCancellation { waiters.remove(waiter) }
                }
            }
            held[thread]++
        }

        fun release(thread: Int): Boolean {
            val owner = owner(held, thread)
            if (owner < 0) return false
            held[owner]--
            heldTotal--
            grant()
            return true
        }

        fun setTotalSlots(slots: Int) {
            this.slots = slots
            grant()
        }

        fun resizeIfIdle(slots: Int): Int {
            if (heldTotal > 0) return heldTotal
            this.slots = slots
            grant()
            return -1
        }

        fun heldCount(): Int = heldTotal

        private fun grant() {
            while (waiters.isNotEmpty() && heldTotal < slots) {
                heldTotal++
                waiters.removeFirst().resume(Unit)
            }
        }
    }

    private companion object {
        const val INITIAL_SLOTS = 1
        const val THREADS = 3

        /** Lincheck numbers the thread of the scenario's start 0, the parallel ones from 1, the end's last. */
        const val MAX_THREADS = THREADS + 2

        /**
         * Whose slot [thread] releases, or -1 if none: its own first. The first parallel thread also releases
         * the slots taken at the start, and the end releases anyone's, so slots cross threads as a worker's do.
         * Only one thread ever touches each count while the threads run, so the counts need no lock.
         */
        fun owner(held: IntArray, thread: Int): Int = when {
            held[thread] > 0 -> thread
            thread == 1 && held[0] > 0 -> 0
            thread == MAX_THREADS - 1 -> held.indexOfFirst { it > 0 }
            else -> -1
        }
    }
}
