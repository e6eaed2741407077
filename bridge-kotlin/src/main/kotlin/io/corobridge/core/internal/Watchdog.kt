package io.corobridge.core.internal

import io.corobridge.core.RunSyncLoop
import java.util.concurrent.TimeUnit
import java.util.concurrent.locks.LockSupport
import java.util.concurrent.locks.ReentrantLock
import kotlin.concurrent.withLock

/*
 * One daemon thread, `corobridge-watchdog`, watches every running loop for stalls: a single task (a call's
 * first step, or one resumed step of a coroutine) that keeps the loop thread busy longer than the loop's
 * stall threshold. It runs while at least one loop thread runs, and ends with the last one.
 *
 * The loop pays almost nothing for this: it bumps a counter (LoopThread.taskSeq, odd while a task runs) with
 * a plain ordered store before and after each task, and never reads the clock. The watchdog samples the
 * counters every quarter of the smallest threshold; a counter that stays odd and unchanged across samples
 * means one task has been running since the first of them. So a stall is seen between one and one and a
 * quarter thresholds after it began, and its length is known to within one sampling period.
 *
 * Each stall is reported once, through System.Logger at WARNING with the loop thread's stack taken at that
 * moment (so the blocking line is in it), counted in the loop's statistics, and recorded as a JFR event when
 * it ends.
 */
internal object Watchdog {
    private val lock = ReentrantLock()
    private val watched = ArrayList<Watched>()
    private var thread: Thread? = null
    private val logger: System.Logger = System.getLogger(RunSyncLoop::class.java.name)

    /** Starts watching [loop]; called on its thread as it starts. */
    fun register(loop: RunSyncLoop) {
        lock.withLock {
            watched.add(Watched(loop))
            if (thread == null) {
                thread = LibraryThreads.create { Thread(LibraryThreads.group, ::watch, "corobridge-watchdog", 0, false) }
                    .apply { start() }
            }
            thread?.let(LockSupport::unpark) // the new loop's threshold may call for a shorter period
        }
    }

    /** Stops watching [loop]; called on its thread as it ends. The last loop out waits for the watchdog to end. */
    fun unregister(loop: RunSyncLoop) {
        val last: Thread?
        lock.withLock {
            val entry = watched.firstOrNull { it.loop === loop } ?: return
            watched.remove(entry)
            entry.finish(System.nanoTime())
            val watchdog = thread
            last = if (watched.isEmpty()) watchdog.also { thread = null } else null
            watchdog?.let(LockSupport::unpark) // to end, or to take up a longer period
        }
        // On the ending loop thread, whose interrupt flag may be set: an InterruptedException here would skip
        // the rest of its last act (releasing its callers).
        last?.let { LibraryThreads.joinUninterruptibly(it, TimeUnit.SECONDS.toNanos(5)) }
    }

    /**
     * The watchdog thread's work. A turn allocates nothing: JMH's count of what every thread allocates puts the
     * watchdog's bytes on the calls running meanwhile (a list copy, its iterator and a condition's wait node at each of
     * 40 turns a second, about 5 KB a second, were 0.002 B of a 0.26 µs call's 64.010 in JMH's count). The loops to
     * sample are copied under the lock into an array this thread keeps (its own: a watchdog that is ending may still be
     * in its last turn when the next one starts), and emptied after the turn, so that a closed loop does not stay
     * reachable from here.
     */
    private fun watch() {
        val self = Thread.currentThread()
        var turn = arrayOfNulls<Watched>(4)
        while (true) {
            val period = lock.withLock {
                if (thread !== self) return
                period()
            }
            // Woken early by register and unregister; a permit they leave makes this return at once.
            LockSupport.parkNanos(this, period)
            // A stray interrupt (a tool cleaning up threads, say) must neither end stall detection for the rest
            // of the JVM nor, left set, make every park return at once: only the last loop's end stops the watchdog.
            Thread.interrupted()
            val count = lock.withLock {
                if (thread !== self) return
                if (turn.size < watched.size) turn = arrayOfNulls(watched.size * 2)
                for (i in 0 until watched.size) turn[i] = watched[i]
                watched.size
            }
            val now = System.nanoTime()
            for (i in 0 until count) turn[i]!!.sample(now)
            java.util.Arrays.fill(turn, 0, count, null)
            turns++
        }
    }

    /** Turns taken since the JVM started (for tests); written by the watchdog thread only. */
    @Volatile
    internal var turns: Long = 0L
        private set

    /** Under the lock: a quarter of the smallest threshold in use, between 1 ms and 1 s. */
    private fun period(): Long {
        var smallest = Long.MAX_VALUE
        for (i in 0 until watched.size) {
            val threshold = watched[i].loop.stallThresholdNanos
            if (threshold in 1 until smallest) smallest = threshold
        }
        return (smallest / 4).coerceIn(MIN_PERIOD, MAX_PERIOD)
    }

    private val MIN_PERIOD = TimeUnit.MILLISECONDS.toNanos(1)
    private val MAX_PERIOD = TimeUnit.SECONDS.toNanos(1)

    /** What the watchdog knows of one loop; touched by the watchdog thread, and by unregister under the lock. */
    private class Watched(val loop: RunSyncLoop) {
        private var seq = 0L
        private var since = 0L
        private var reported = false
        private var stack: Array<StackTraceElement>? = null

        fun sample(now: Long) {
            val current = loop.thread.taskSeq
            if (current != seq) {
                finish(now)
                seq = current
                since = now
                return
            }
            if (current and 1L == 0L) return // idle, and was idle at the last sample too
            val threshold = loop.stallThresholdNanos
            if (threshold <= 0L) return
            val length = now - since
            if (length < threshold) return
            loop.counters.stallStats.extend(length)
            if (!reported) {
                reported = true
                loop.counters.stallStats.count()
                report(length, threshold)
            }
        }

        /** The task seen running at the last sample has ended (or the loop has): close its stall, if any. */
        fun finish(now: Long) {
            if (!reported) return
            val length = now - since
            loop.counters.stallStats.extend(length)
            Events.stall(loop.name, length, stack)
            loop.counters.stallStats.end()
            reported = false
            stack = null
        }

        private fun report(length: Long, threshold: Long) {
            val state = loop.thread.state
            val trace = loop.thread.stackTrace
            stack = trace
            val where = StallReport(
                "stack of loop thread \"${loop.thread.name}\" at the moment the stall was noticed ($state)"
            ).also { it.stackTrace = trace }
            val frame = trace.firstOrNull { !CallSites.isLibraryOrRuntime(it) }
            val at = frame?.let { " in ${it.className}.${it.methodName}(${it.fileName}:${it.lineNumber})" } ?: ""
            // Say what the stack shows, not what is most likely: a thread that waits is blocked; a runnable
            // one computes, or reads a socket (which also shows as RUNNABLE), or is a gather starting calls.
            val what = when (state) {
                Thread.State.BLOCKED, Thread.State.WAITING, Thread.State.TIMED_WAITING ->
                    "the loop thread is blocked ($state)$at: blocking code is running on the loop thread, and every " +
                        "other call on this loop waits for it. Run blocking code with runInWorkerThread { ... } instead."
                else ->
                    "the loop thread is running$at without suspending: CPU work, or blocking I/O (a socket read " +
                        "shows as RUNNABLE), and every other call on this loop waits for it. Run blocking code with " +
                        "runInWorkerThread { ... }; split long computations with yield(), or run them on " +
                        "Dispatchers.Default."
            }
            logger.log(
                System.Logger.Level.WARNING,
                "loop \"${loop.name}\" has been busy with one task for at least ${millis(length)} (stall threshold " +
                    "${millis(threshold)}): $what The stack attached is the loop thread's at that moment.",
                where,
            )
        }
    }

    private fun millis(nanos: Long): String = "${TimeUnit.NANOSECONDS.toMillis(nanos)} ms"
}

/** Carries the loop thread's stack in a stall report; not an error of the watchdog itself. */
internal class StallReport(message: String) : Throwable(message, null, false, true)

/** A loop's stall figures; written by the watchdog thread only, read by RunSyncLoop.stats from any thread. */
internal class StallStats {
    @Volatile
    var stalls: Long = 0L
        private set

    @Volatile
    var longestNanos: Long = 0L
        private set

    /** Stalls whose end the watchdog has seen (and recorded as a JFR event). */
    @Volatile
    var ended: Long = 0L
        private set

    fun count() {
        stalls++
    }

    fun end() {
        ended++
    }

    fun extend(lengthNanos: Long) {
        if (lengthNanos > longestNanos) longestNanos = lengthNanos
    }
}
