package io.corobridge.core.internal

import io.corobridge.core.RunSyncLoop
import java.util.concurrent.ConcurrentLinkedQueue
import java.util.concurrent.atomic.AtomicBoolean
import java.util.concurrent.locks.LockSupport

/*
 * The thread of a RunSyncLoop and its task queue.
 *
 * Hand-off: producers offer to a lock-free queue and then read `sleeping`; the loop sets `sleeping` and then
 * re-reads the queue before it parks. Both sides use volatile accesses (the queue's CAS and the flag), which
 * are sequentially consistent, so at least one side sees the other: either the loop finds the task on its
 * re-check, or the producer sees `sleeping` and unparks it. A spurious unpark only costs one extra turn.
 *
 * Being a subclass of Thread makes "is this a loop thread?" a type check, which the blocking entry points do
 * on every call to catch re-entry at any depth (a loop started by NEW_THREAD re-entry is a LoopThread too).
 */
internal class LoopThread(private val loop: RunSyncLoop, name: String) :
    Thread(null, null, name, 0, false) {

    private val queue = ConcurrentLinkedQueue<Runnable>()
    private val sleeping = AtomicBoolean()

    init {
        isDaemon = true
    }

    /** Adds a task and wakes the loop if it sleeps. Safe from any thread. */
    fun enqueue(task: Runnable) {
        queue.offer(task)
        if (sleeping.get() && sleeping.compareAndSet(true, false)) {
            LockSupport.unpark(this)
        }
    }

    /** Wakes the loop so it re-examines its state (used when closing). */
    fun wake() {
        sleeping.set(false)
        LockSupport.unpark(this)
    }

    /** Removes a task that was never run; true if this call removed it. */
    fun remove(task: Runnable): Boolean = queue.remove(task)

    /** Takes the next task without running it (used to drain the queue at the end). */
    fun poll(): Runnable? = queue.poll()

    override fun run() {
        var fatal: Throwable? = null
        try {
            serve()
        } catch (t: Throwable) {
            fatal = t
        } finally {
            loop.terminate(fatal)
        }
    }

    private fun serve() {
        while (true) {
            if (loop.isClosed && loop.mayStop(queue.isEmpty())) return
            val task = queue.poll()
            if (task == null) {
                idle(loop.idleParkNanos())
                continue
            }
            try {
                task.run()
            } catch (t: Throwable) {
                // A task's failure is reported and the loop keeps serving; only a failure of the reporting
                // itself (see RunSyncLoop.reportFailure) escapes and ends the loop.
                loop.reportFailure(t)
            }
        }
    }

    private fun idle(parkNanos: Long) {
        // An interrupt means nothing to the loop (corobridge never interrupts it); left set, it would make
        // every park return at once and turn the idle loop into a busy one.
        interrupted()
        sleeping.set(true)
        if (!queue.isEmpty()) {
            sleeping.set(false)
            return
        }
        if (parkNanos > 0) LockSupport.parkNanos(this, parkNanos) else LockSupport.park(this)
        sleeping.set(false)
    }
}
