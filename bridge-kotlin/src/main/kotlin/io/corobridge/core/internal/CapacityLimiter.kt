package io.corobridge.core.internal

import java.util.concurrent.atomic.AtomicInteger
import java.util.concurrent.atomic.AtomicLong
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
 * The uncontended path takes no lock: `state` packs the number of slots (high 32 bits) and the slots held
 * (low 32 bits) in one word, so taking a slot is one CAS that checks both at once, and a resize is atomic with
 * respect to it. A slot is taken that way only while nobody waits, which keeps the queue first come, first
 * served. The lock guards the queue of waiters and the wait-time total.
 *
 * No wake-up is lost: a waiter enqueues and counts itself (`waiting`, volatile) and then, still under the lock,
 * tries to take a free slot for the head of the queue; a releaser frees its slot and then reads `waiting`.
 * Each side writes before it reads, so at least one of them sees the other.
 *
 * Granting is a handshake on the waiter's state, WAITING -> GRANTED by the limiter or WAITING -> GONE by the
 * waiter giving up (cancelled, interrupted, timed out). Exactly one side wins, so a slot is neither leaked nor
 * given twice: a slot taken for a waiter that is gone goes back, and a waiter that was granted owns its slot
 * even if it gives up in the same instant. Waiters are resumed and unparked outside the lock. The clock is
 * read only by callers that have to wait.
 */
internal class CapacityLimiter(total: Int) {
    private val state = AtomicLong(pack(total, 0))
    private val lock = ReentrantLock()
    private val waiters = ArrayDeque<Waiter>()

    @Volatile
    private var waiting = 0
    private var waitedNanos = 0L

    /** Thrown by the acquire methods of a limiter of 0 slots. */
    class Off : RuntimeException(null, null, false, false)

    /** Slots held now (by running work, and by work that was abandoned but has not ended). */
    val heldCount: Int
        get() = held(state.get())

    /** Callers waiting for a slot now. */
    val waitingCount: Int
        get() = waiting

    /** The time callers have spent waiting for a slot, summed, since the limiter was made. */
    val waitedNanosTotal: Long
        get() = lock.withLock { waitedNanos }

    /** Slots, held and waiting, read together. */
    fun occupancy(): Occupancy = lock.withLock {
        val s = state.get()
        Occupancy(total(s), held(s), waiters.size, waitedNanos)
    }

    class Occupancy(val slots: Int, val held: Int, val waiting: Int, val waitedNanos: Long)

    /** The number of slots. Raising it lets waiters in at once; lowering it takes effect as slots come back. */
    var totalSlots: Int
        get() = total(state.get())
        set(value) {
            require(value >= 1) { "total must be at least 1, was $value" }
            while (true) {
                val s = state.get()
                if (state.compareAndSet(s, pack(value, held(s)))) break
            }
            grantWaiting()
        }

    /**
     * Sets the number of slots (0 switches the limiter off) only if none is held; returns the number held
     * otherwise, or -1 if it was set.
     */
    fun resizeIfIdle(value: Int): Int {
        require(value >= 0) { "total must not be negative, was $value" }
        while (true) {
            val s = state.get()
            if (held(s) > 0) return held(s)
            if (state.compareAndSet(s, pack(value, 0))) break
        }
        grantWaiting()
        return -1
    }

    /** Takes a slot if one is free and nobody waits; never waits. Lock-free. @throws Off if switched off */
    fun tryAcquire(): Boolean = waiting == 0 && tryTake()

    /** Takes a slot, suspending (cancellably, in FIFO order) until one is free. */
    suspend fun acquire() {
        if (waiting == 0 && tryTake()) return
        suspendCancellableCoroutine { continuation ->
            val waiter = SuspendedWaiter(continuation)
            if (enqueue(waiter)) {
                continuation.resume(Unit) { _, _, _ -> release() }
                return@suspendCancellableCoroutine
            }
            continuation.invokeOnCancellation { if (waiter.leave()) forget(waiter) }
        }
    }

    /**
     * Takes a slot, parking the calling thread in FIFO order until one is free or [timeoutNanos] have passed
     * (0: no deadline). True if it got one. Unless [interruptible], an interrupt does not end the wait: the
     * thread keeps its place in the queue and its interrupt flag is set again once it has the slot.
     *
     * @throws InterruptedException if [interruptible] and the thread is interrupted first (no slot is then held)
     */
    fun acquireBlocking(timeoutNanos: Long = 0L, interruptible: Boolean = true): Boolean {
        if (waiting == 0 && tryTake()) return true
        val waiter = ParkedWaiter(Thread.currentThread())
        if (enqueue(waiter)) return true
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
                if (!interruptible) {
                    interrupted = true
                    continue
                }
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
        while (true) {
            val s = state.get()
            check(held(s) > 0) { "released a slot that was not held" }
            if (state.compareAndSet(s, s - 1)) break
        }
        if (waiting > 0) grantWaiting()
    }

    /** Takes a free slot if there is one; throws Off if the limiter is switched off. Lock-free. */
    private fun tryTake(): Boolean {
        while (true) {
            val s = state.get()
            val total = total(s)
            if (total == 0) throw Off()
            if (held(s) >= total) return false
            if (state.compareAndSet(s, s + 1)) return true
        }
    }

    /** Queues [waiter] and hands free slots to the head of the queue; true if [waiter] got one at once. */
    private fun enqueue(waiter: Waiter): Boolean {
        val granted = lock.withLock {
            if (total(state.get()) == 0) throw Off()
            waiters.addLast(waiter)
            waiting = waiters.size
            takeGrantable()
        }
        var own = false
        for (w in granted) if (w === waiter) own = true else w.wake(this)
        return own
    }

    private fun grantWaiting() {
        val granted = lock.withLock { takeGrantable() }
        for (w in granted) w.wake(this)
    }

    private fun forget(waiter: Waiter) {
        val now = System.nanoTime()
        lock.withLock {
            if (waiters.remove(waiter)) {
                waitedNanos += now - waiter.since
                waiting = waiters.size
            }
        }
    }

    /** Under the lock: takes free slots for waiters, in order, and returns those to wake. */
    private fun takeGrantable(): List<Waiter> {
        if (waiters.isEmpty()) return emptyList()
        var granted: ArrayList<Waiter>? = null
        var now = 0L
        while (waiters.isNotEmpty()) {
            if (!tryTakeForWaiter()) break
            val next = waiters.removeFirst()
            if (now == 0L) now = System.nanoTime()
            waitedNanos += now - next.since
            if (next.claim()) {
                if (granted == null) granted = ArrayList(1)
                granted.add(next)
            } else {
                giveBack() // it left meanwhile: the slot is free again
            }
        }
        waiting = waiters.size
        return granted ?: emptyList()
    }

    /** Like tryTake, but a switched-off limiter just has no slot (its waiters time out or are cancelled). */
    private fun tryTakeForWaiter(): Boolean {
        while (true) {
            val s = state.get()
            if (held(s) >= total(s)) return false
            if (state.compareAndSet(s, s + 1)) return true
        }
    }

    private fun giveBack() {
        while (true) {
            val s = state.get()
            if (state.compareAndSet(s, s - 1)) return
        }
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
        const val HELD_MASK = 0xFFFF_FFFFL

        fun pack(total: Int, held: Int): Long = (total.toLong() shl 32) or held.toLong()
        fun total(state: Long): Int = (state ushr 32).toInt()
        fun held(state: Long): Int = (state and HELD_MASK).toInt()
    }
}
