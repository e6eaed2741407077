package io.corobridge.core.internal

import io.corobridge.core.RunSyncLoop
import java.util.concurrent.atomic.AtomicBoolean
import java.util.concurrent.locks.LockSupport

/*
 * The thread of a RunSyncLoop and its task queue (see TaskQueue): calls submitted by callers and coroutine
 * steps dispatched to the loop, run in the order they arrived.
 *
 * Hand-off: producers add a task and then read `sleeping`; the loop sets `sleeping` and then re-reads the
 * queue before it parks. Both sides use volatile accesses, which are sequentially consistent, so at least
 * one side sees the other: either the loop finds the task on its re-check, or the producer sees `sleeping`
 * and unparks it. A spurious unpark only costs one extra turn. Before it sets `sleeping`, an idle loop
 * spins for a while (the loop's WaitStrategy): a task that arrives then costs its producer no unpark and the
 * loop no wake-up. Like its callers (see Spinning), the loop stops spinning while its spins keep ending without
 * work: calls that wait for I/O leave it idle for longer than any spin, and each spin would only burn a
 * processor that the I/O threads and callers need.
 *
 * Being a subclass of Thread makes "is this a loop thread?" a type check, which the blocking entry points do
 * on every call to catch re-entry at any depth (a loop started by NEW_THREAD re-entry is a LoopThread too).
 */
internal class LoopThread(@JvmField val loop: RunSyncLoop, name: String) :
    Thread(LibraryThreads.group, null, name, 0, false) {

    @JvmField
    val queue = TaskQueue()
    private val sleeping = AtomicBoolean()

    /**
     * What only this thread writes, at every task, on cache lines of its own (see [OwnLine]): [SEQ] is twice
     * the tasks started, plus one while a task runs (odd means busy), which the watchdog reads to spot a task
     * that runs too long; [OWN_STEPS] counts the steps this thread dispatched to its own loop (a coroutine on
     * the loop resuming itself), for the statistics; [SPINS] counts the idle spins begun, for tests.
     */
    private val own = OwnLine(3)

    /** Idle spins in a row that ended without a task, up to [Spinning.MISSES_TO_PAUSE]; this thread only. */
    @Volatile
    internal var spinMisses: Int = 0
        private set

    /** Idle turns that skipped the spin while paused; every [Spinning.PROBE_ONE_IN]th spins anyway. */
    private var pausedIdles = 0

    val spinsBegun: Long
        get() = own.get(SPINS)

    val taskSeq: Long
        get() = own.get(SEQ)

    val ownStepsAdded: Long
        get() = own.get(OWN_STEPS)

    /** Counts a step dispatched on this thread; loop thread only. */
    fun countOwnStep() {
        own.lazySet(OWN_STEPS, own.get(OWN_STEPS) + 1)
    }

    /** Adds a task (a submitted call or a dispatched step) and wakes the loop if it sleeps. Any thread. */
    fun enqueue(task: QueuedTask) {
        queue.push(task)
        if (sleeping.get() && sleeping.compareAndSet(true, false)) {
            LockSupport.unpark(this)
        }
    }

    /** Wakes the loop so it re-examines its state (used when closing). */
    fun wake() {
        sleeping.set(false)
        LockSupport.unpark(this)
    }

    override fun run() {
        var fatal: Throwable? = null
        Watchdog.register(loop)
        try {
            serve()
        } catch (t: Throwable) {
            fatal = t
        } finally {
            Watchdog.unregister(loop)
            loop.closing.terminate(fatal)
        }
    }

    private fun hasTasks(): Boolean = !queue.isEmpty()

    private fun serve() {
        // The loop's own copy of SEQ, kept in a local, so that a task costs two ordered stores and no load.
        var seqHere = 0L
        while (true) {
            if (loop.isClosed && loop.closing.mayStop(!hasTasks())) return
            val task = queue.poll()
            if (task == null) {
                idle()
                continue
            }
            own.lazySet(SEQ, ++seqHere)
            try {
                task.run()
            } catch (t: Throwable) {
                // A task's failure is reported and the loop keeps serving; only a failure of the reporting
                // itself (see FailureReports) escapes and ends the loop.
                loop.reportFailure(t)
            } finally {
                // An interrupt a task left behind (its own, or one sent to the loop thread) belongs to nobody
                // else: cleared here, the next task starts clean, as if each had a thread of its own.
                interrupted()
                own.lazySet(SEQ, ++seqHere)
            }
        }
    }

    private fun idle() {
        // An interrupt means nothing to the loop (corobridge never interrupts it); left set, it would make
        // every park return at once and turn the idle loop into a busy one.
        interrupted()
        val closing = loop.isClosed
        if (!closing && spinIfItPays(loop.waitStrategy.loopSpinNanos)) return
        loop.closing.suspendedCalls.sweepIfAdded() // let go of calls that ended before parking, not while spinning
        sleeping.set(true)
        if (hasTasks()) {
            sleeping.set(false)
            return
        }
        if (closing) LockSupport.parkNanos(this, loop.closing.closeParkNanos()) else LockSupport.park(this)
        sleeping.set(false)
    }

    /**
     * Spins up to [nanos] for a task to arrive, unless spinning is paused; true if one did. After
     * [Spinning.MISSES_TO_PAUSE] spins in a row without a task the loop parks at once, except that every
     * [Spinning.PROBE_ONE_IN]th idle turn spins anyway, and a spin that meets a task ends the pause.
     *
     * The loop spins even where the JVM counts one processor: a CPU quota of one on a host of many cores counts
     * one, and there the callers run beside the loop; a loop that parked at once made each call pay two wake-ups
     * (40 us a call against 1-3 us, `-XX:ActiveProcessorCount=1` on 2 cores). On a single core the pause bounds
     * what the spin costs (6.0 us a call against 4.8 without it, `taskset -c 0`).
     */
    private fun spinIfItPays(nanos: Long): Boolean {
        if (nanos <= 0L) return false
        val misses = spinMisses
        if (misses >= Spinning.MISSES_TO_PAUSE && ++pausedIdles and (Spinning.PROBE_ONE_IN - 1) != 0) return false
        own.lazySet(SPINS, own.get(SPINS) + 1)
        if (spinForTasks(nanos)) {
            if (misses != 0) spinMisses = 0
            return true
        }
        if (misses < Spinning.MISSES_TO_PAUSE) spinMisses = misses + 1
        return false
    }

    /** Spins up to [nanos] for a task to arrive; true if one did. */
    private fun spinForTasks(nanos: Long): Boolean {
        val deadline = System.nanoTime() + nanos
        var turns = 0
        while (!hasTasks()) {
            onSpinWait()
            if (++turns and SPINS_PER_CLOCK_READ == 0 && System.nanoTime() - deadline >= 0) return false
        }
        return true
    }

    private companion object {
        const val SEQ = 0
        const val OWN_STEPS = 1
        const val SPINS = 2

        /** Read the clock every 64 turns: often enough for microsecond bounds, rarely enough to be cheap. */
        const val SPINS_PER_CLOCK_READ = 63
    }
}

/** True on this loop's own thread. */
internal fun RunSyncLoop.isLoopThread(): Boolean = Thread.currentThread() === thread

/**
 * A few longs that one thread writes often and others read now and then, alone on their cache lines: an
 * array (whose layout, unlike an object's, is fixed) with 64 bytes of unused slots before and after them. A
 * write to a line that another processor holds must first take the line from it; kept beside fields that the
 * callers write at every call (the queue's head, the statistics), each of this thread's writes and each of
 * theirs would take the line from the other.
 */
internal class OwnLine(count: Int) {
    private val slots = java.util.concurrent.atomic.AtomicLongArray(PAD + count + PAD)

    fun get(index: Int): Long = slots.get(PAD + index)

    fun lazySet(index: Int, value: Long) {
        slots.lazySet(PAD + index, value)
    }

    private companion object {
        /** 64 bytes of longs. */
        const val PAD = 8
    }
}
