package io.corobridge.core.internal

import java.util.concurrent.atomic.AtomicInteger
import java.util.concurrent.locks.LockSupport
import java.util.concurrent.locks.ReentrantLock
import kotlin.concurrent.withLock
import kotlinx.coroutines.CancellableContinuation
import kotlinx.coroutines.suspendCancellableCoroutine

/*
 * A counting limiter: at most `total` slots are held at once; whoever asks for one when none is free waits,
 * first come, first served. Coroutines wait by suspending (the loop thread is never blocked), threads by
 * parking. A slot may be released from any thread, not only the one that took it: a worker thread releases
 * the slot its caller took. A limiter of 0 slots is switched off: asking fails at once with Off.
 *
 * Granting is a handshake on the waiter's state, WAITING -> GRANTED by the limiter or WAITING -> GONE by the
 * waiter giving up (cancelled, interrupted, timed out). Exactly one side wins, so a slot is neither leaked nor
 * given twice: a waiter that is gone is skipped, and one that was granted owns its slot even if it gives up in
 * the same instant (it then keeps or releases it itself). The lock guards only the counters and the queue;
 * waiters are resumed and unparked outside it. The clock is read only by callers that have to wait.
 */
internal class CapacityLimiter(total: Int) {
    private val lock = ReentrantLock()
    private var total = total
    private var held = 0
    private var waitedNanos = 0L
    private val waiters = ArrayDeque<Waiter>()

    /** Thrown by the acquire methods of a limiter of 0 slots. */
    class Off : RuntimeException(null, null, false, false)

    /** Slots held now (by running work, and by work that was abandoned but has not ended). */
    val heldCount: Int
        get() = lock.withLock { held }

    /** Callers waiting for a slot now. */
    val waitingCount: Int
        get() = lock.withLock { waiters.size }

    /** The time callers have spent waiting for a slot, summed, since the limiter was made. */
    val waitedNanosTotal: Long
        get() = lock.withLock { waitedNanos }

    /** Slots, held and waiting, read together. */
    fun occupancy(): Occupancy = lock.withLock { Occupancy(total, held, waiters.size, waitedNanos) }

    class Occupancy(val slots: Int, val held: Int, val waiting: Int, val waitedNanos: Long)

    /** The number of slots. Raising it lets waiters in at once; lowering it takes effect as slots come back. */
    var totalSlots: Int
        get() = lock.withLock { total }
        set(value) {
            require(value >= 1) { "total must be at least 1, was $value" }
            grantAll(lock.withLock {
                total = value
                takeGrantable()
            })
        }

    /**
     * Sets the number of slots (0 switches the limiter off) only if none is held; returns the number held
     * otherwise, or -1 if it was set.
     */
    fun resizeIfIdle(value: Int): Int {
        require(value >= 0) { "total must not be negative, was $value" }
        lock.withLock {
            if (held > 0) return held
            total = value
            return -1
        }
    }

    /** Takes a slot, suspending (cancellably, in FIFO order) until one is free. */
    suspend fun acquire() {
        if (tryAcquireNow()) return
        suspendCancellableCoroutine { continuation ->
            val waiter = SuspendedWaiter(continuation)
            if (!enqueueOrTake(waiter)) {
                continuation.resume(Unit) { _, _, _ -> release() }
                return@suspendCancellableCoroutine
            }
            continuation.invokeOnCancellation { if (waiter.leave()) forget(waiter) }
        }
    }

    /**
     * Takes a slot, parking the calling thread in FIFO order until one is free or [timeoutNanos] have passed
     * (0: no deadline). True if it got one.
     *
     * @throws InterruptedException if the thread is interrupted first (no slot is then held)
     */
    fun acquireBlocking(timeoutNanos: Long = 0L): Boolean {
        if (tryAcquireNow()) return true
        val waiter = ParkedWaiter(Thread.currentThread())
        if (!enqueueOrTake(waiter)) return true
        val deadline = if (timeoutNanos > 0L) waiter.since + timeoutNanos else 0L
        var interrupted = false
        while (!waiter.isGranted) {
            if (deadline != 0L) {
                val left = deadline - System.nanoTime()
                if (left <= 0L) {
                    if (waiter.leave()) {
                        forget(waiter)
                        if (interrupted) Thread.currentThread().interrupt()
                        return false
                    }
                    continue // granted in the same instant: it is ours
                }
                LockSupport.parkNanos(this, left)
            } else {
                LockSupport.park(this)
            }
            if (Thread.interrupted()) {
                if (waiter.leave()) {
                    forget(waiter)
                    throw InterruptedException("interrupted while waiting for a slot")
                }
                interrupted = true // granted in the same instant: keep the slot, and the interrupt
            }
        }
        if (interrupted) Thread.currentThread().interrupt()
        return true
    }

    /** Gives a slot back, handing it to the longest waiter if there is one. Any thread. */
    fun release() {
        grantAll(lock.withLock {
            check(held > 0) { "released a slot that was not held" }
            held--
            takeGrantable()
        })
    }

    private fun tryAcquireNow(): Boolean = lock.withLock {
        if (total == 0) throw Off()
        if (waiters.isEmpty() && held < total) {
            held++
            true
        } else {
            false
        }
    }

    /** Queues [waiter], unless a slot is free and nobody is ahead: then takes it and returns false. */
    private fun enqueueOrTake(waiter: Waiter): Boolean = lock.withLock {
        if (total == 0) throw Off()
        if (waiters.isEmpty() && held < total) {
            held++
            false
        } else {
            waiters.addLast(waiter)
            true
        }
    }

    private fun forget(waiter: Waiter) {
        val now = System.nanoTime()
        lock.withLock {
            if (waiters.remove(waiter)) waitedNanos += now - waiter.since
        }
    }

    /** Under the lock: assigns free slots to waiters, in order, and returns those to wake. */
    private fun takeGrantable(): List<Waiter> {
        if (waiters.isEmpty() || held >= total) return emptyList()
        val now = System.nanoTime()
        val granted = ArrayList<Waiter>(1)
        while (held < total) {
            val next = waiters.removeFirstOrNull() ?: break
            waitedNanos += now - next.since
            if (next.claim()) {
                held++
                granted.add(next)
            }
        }
        return granted
    }

    private fun grantAll(granted: List<Waiter>) {
        for (waiter in granted) waiter.wake(this)
    }

    private abstract class Waiter {
        private val state = AtomicInteger(WAITING)

        /** When it began to wait. */
        val since: Long = System.nanoTime()

        val isGranted: Boolean
            get() = state.get() == GRANTED

        /** The limiter's side: true if the slot now belongs to this waiter. */
        fun claim(): Boolean = state.compareAndSet(WAITING, GRANTED)

        /** The waiter's side: true if it left before being granted a slot. */
        fun leave(): Boolean = state.compareAndSet(WAITING, GONE)

        /** Tells the waiter it holds a slot; outside the lock. */
        abstract fun wake(limiter: CapacityLimiter)
    }

    private class SuspendedWaiter(private val continuation: CancellableContinuation<Unit>) : Waiter() {
        override fun wake(limiter: CapacityLimiter) {
            // Cancelled after the grant but before it could run: the slot goes back.
            continuation.resume(Unit) { _, _, _ -> limiter.release() }
        }
    }

    private class ParkedWaiter(private val thread: Thread) : Waiter() {
        override fun wake(limiter: CapacityLimiter) {
            LockSupport.unpark(thread)
        }
    }

    private companion object {
        const val WAITING = 0
        const val GRANTED = 1
        const val GONE = 2
    }
}
