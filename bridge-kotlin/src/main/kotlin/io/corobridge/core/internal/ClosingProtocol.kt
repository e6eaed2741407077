package io.corobridge.core.internal

import io.corobridge.core.RunSyncLoop
import java.util.concurrent.CountDownLatch
import java.util.concurrent.TimeUnit
import java.util.concurrent.atomic.AtomicBoolean
import java.util.concurrent.atomic.AtomicInteger
import kotlin.coroutines.cancellation.CancellationException
import kotlin.time.Duration.Companion.nanoseconds
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.CoroutineStart
import kotlinx.coroutines.Job
import kotlinx.coroutines.launch
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeoutOrNull

/*
 * The lifecycle of a RunSyncLoop and the protocol that closes it: the hardest part of the library, in one place.
 *
 *            close(), any thread, once (CAS)                 the loop thread's last act: terminate()
 *   OPEN ───────────────────────────────────────▶ CLOSING ─────────────────────────────────────────▶ CLOSED
 *    │ the thread starts at first use               │ when mayStop() says so, at the latest at             ▲
 *    │ (startIfNeeded)                              │ closeDeadline                                        │
 *    │                                              │                                                      │
 *    └─ close() before the thread ever ran, with nothing to do: the closer calls terminate() itself ───────┘
 *
 *   While CLOSING, the closer waits for CLOSED (awaitTermination). If the thread has been inside one task since
 *   before close() began, it stops waiting at stuckDeadline, otherwise at closeDeadline + 1 s; either way it then
 *   refuses the queued calls and releases the callers itself, and the thread runs terminate() whenever its task
 *   returns.
 *
 * Deadlines, set once when close() begins: callsDeadline = now + closeGraceNanos (calls in flight finish
 * cancelling by then); stuckDeadline = now + background grace + closeGraceNanos; closeDeadline = stuckDeadline +
 * callbacksBudgetNanos (the whole budget).
 *
 * What each kind of work gets once close() has begun:
 * - a new call, background task, gather group or shutdown callback: IllegalStateException (checkOpen);
 * - a call still queued: refused when the loop takes it (LoopCall.run); one pushed after the loop's last drain is
 *   refused by its own producer (refuseIfEnded): the queue's getAndSet hands each task to exactly one of the two;
 * - a call in flight: cancelled at once; its caller gets a CancellationException naming the loop once the call
 *   has finished cancelling, or, if it has not by callsDeadline, is released with IllegalStateException
 *   (releaseUnfinished);
 * - a background task: runs for the background grace, is then cancelled, and abandoned after closeGraceNanos;
 * - the shutdown callbacks: each runs once on the loop thread after the background tasks, newest first, within
 *   callbacksBudgetNanos; those the loop thread cannot run (one before them hangs, the thread is stuck or died)
 *   run on the closing thread;
 * - a coroutine step dispatched after the loop ended: its coroutine is cancelled and the step runs on
 *   Dispatchers.IO, where it can finish cancelling (moveOff).
 *
 * Releasing callers: a caller parked on a call that the loop will never finish must be reachable when the loop
 * gives up. A call that suspended on the loop thread is in suspendedCalls; one whose caller parked is in
 * parkedCalls (or, when that has no room, a child of the supervisor, or, if it attached after the supervisor had
 * completed, among the latecomers); one on its caller's thread is in callerThreadCalls. The `released`
 * reason is published before the walk, so a call that becomes reachable afterwards releases itself
 * (LoopCall.attachToLoop, BlockingCall).
 */
internal class ClosingProtocol(private val loop: RunSyncLoop) {
    private val state = AtomicInteger(OPEN)
    private val started = AtomicBoolean()
    private val terminated = CountDownLatch(1)

    @Volatile
    private var closingSequence: Job? = null

    @Volatile
    private var closeDeadline: Long = 0L

    /** When calls cancelled by close() that have not finished are abandoned (close start + closeGraceNanos). */
    @Volatile
    private var callsDeadline: Long = 0L

    /**
     * When a loop thread still inside the task it was running when close began counts as stuck (close start +
     * background grace + closeGraceNanos: by then the closing sequence would have abandoned cancelled work).
     */
    @Volatile
    private var stuckDeadline: Long = 0L

    /** The loop thread's task counter when close began; odd if it was inside a task. */
    @Volatile
    private var seqAtClose: Long = 0L

    /** Set when the loop gives up on its unfinished calls (it ended, or its thread is stuck). */
    @Volatile
    private var released: Throwable? = null

    /** How long calls in flight may take to finish after close() cancels them; tests shorten it. */
    @Volatile
    var closeGraceNanos: Long = DEFAULT_CLOSE_GRACE_NANOS

    /** How long the shutdown callbacks may take together while closing; tests shorten it. */
    @Volatile
    var callbacksBudgetNanos: Long = CALLBACKS_NANOS

    /** True for the throwaway loops that rehearse closing (see DefaultLoop): their close warns of nothing. */
    var isRehearsal: Boolean = false

    /** Why the loop thread died, if it did; set before the state becomes closed. */
    @Volatile
    var deathCause: Throwable? = null
        private set

    /**
     * Blocking calls that suspended on the loop thread; closing the loop cancels them and waits for them as it
     * does for the supervisor's children. See SuspendedCalls.
     */
    val suspendedCalls: SuspendedCalls = SuspendedCalls()

    /**
     * Blocking calls whose callers have parked; closing cancels them, and releases their callers if it gives up
     * on its calls. See ParkedCalls.
     */
    val parkedCalls: ParkedCalls = ParkedCalls()

    /**
     * Calls running on their callers' threads (RunOn.CALLER_THREAD, NEW_THREAD), from before they start until
     * they end; closing cancels them, waits for them and releases their callers as it does the supervisor's
     * children. See CallerThreadCall.attachToLoop.
     */
    private val callerThreadCalls: MutableSet<LoopCall<*>> = java.util.concurrent.ConcurrentHashMap.newKeySet()

    /** Calls that started while the loop was closing and could not join the supervisor; see LoopCall.attachToLoop. */
    private val latecomers: MutableSet<LoopCall<*>> = java.util.concurrent.ConcurrentHashMap.newKeySet()

    /** True once close() has begun. */
    val isClosed: Boolean
        get() = state.get() != OPEN

    /** True once the loop has ended: late tasks are refused or moved off by whoever sees them. */
    val hasEnded: Boolean
        get() = state.get() == CLOSED

    val stateName: String
        get() = STATE_NAMES[state.get()]

    /** Throws the closed loop's exception unless the loop is open. */
    fun checkOpen() {
        if (state.get() != OPEN) throw closedException()
    }

    /** The exception for a call made or still queued after the loop closed. */
    fun closedException(): IllegalStateException =
        IllegalStateException("loop \"${loop.name}\" is closed; it accepts no new calls")

    /** Starts the loop thread unless it has started (or the closer ended a loop that never started). */
    fun startIfNeeded() {
        if (!started.get() && started.compareAndSet(false, true)) loop.thread.start()
    }

    /**
     * Closes the loop: `close(Duration)` without the default-loop guard (the shutdown hook uses it).
     * [backgroundGraceNanos] is how long background tasks may still run.
     */
    fun shutdown(backgroundGraceNanos: Long) {
        // Everything the loop thread may still do while closing is bounded: background tasks their grace,
        // cancelled calls and tasks closeGraceNanos, shutdown callbacks callbacksBudgetNanos. Past that it stops
        // regardless.
        val budget = saturatedAdd(backgroundGraceNanos, closeGraceNanos + callbacksBudgetNanos)
        // The deadline must be written before the state leaves OPEN (the loop reads it once it sees CLOSING),
        // and only while it is still OPEN, so a second close() does not move an earlier deadline.
        if (state.get() == OPEN) {
            val now = System.nanoTime()
            callsDeadline = now + closeGraceNanos
            closeDeadline = saturatedAdd(now, budget)
            stuckDeadline = saturatedAdd(now, saturatedAdd(backgroundGraceNanos, closeGraceNanos))
            seqAtClose = loop.thread.taskSeq
        }
        if (state.compareAndSet(OPEN, CLOSING)) {
            val closing = CancellationException("loop \"${loop.name}\" is closing")
            loop.supervisorJob.cancel(closing)
            cancelSuspended(closing)
            parkedCalls.forEach { it.cancel(closing) }
            for (call in callerThreadCalls) call.cancel(closing)
            // Calls on their callers' threads (RunOn.CALLER_THREAD) may be in flight although the thread never ran.
            val idle = loop.backgroundTasks.count == 0 && loop.shutdownCallbacks.isEmpty &&
                loop.supervisorJob.children.none() && !anyOnCallerThreadUnfinished()
            if (idle && started.compareAndSet(false, true)) {
                terminate(null) // the thread never ran and nothing is left to do: finish closing here
            } else {
                // Published before it starts: the loop must never see it running yet unpublished (and stop).
                val sequence = CoroutineScope(loop.dispatcher).launch(start = CoroutineStart.LAZY) {
                    finishClosing(backgroundGraceNanos)
                }
                closingSequence = sequence
                sequence.invokeOnCompletion { loop.thread.wake() }
                sequence.start()
                loop.supervisorJob.invokeOnCompletion { loop.thread.wake() }
                startIfNeeded()
                loop.thread.wake()
            }
        }
        if (!isOwnOrReentrantThread()) {
            awaitTermination()
            awaitWorkers()
        }
    }

    /**
     * True on this loop's thread, or on a thread running a call re-entered from it (at any depth): this loop's
     * thread waits for that call, so waiting there for the loop to end would only end at the stuck deadline.
     */
    private fun isOwnOrReentrantThread(): Boolean {
        var current = (Thread.currentThread() as? LoopThread)?.loop
        while (current != null) {
            if (current === loop) return true
            current = current.reentryParent
        }
        return false
    }

    /**
     * After the loop thread ended (which stopped the pool and interrupted workers still running): waits for
     * the worker threads to end too, up to the calls' grace, and names those that do not.
     */
    private fun awaitWorkers() {
        if (Thread.currentThread() is WorkerThread && (Thread.currentThread() as WorkerThread).loop === loop) return
        // Within close's budget: as long as workers get after being interrupted, but not past the budget's end.
        val left = saturatedAdd(closeDeadline, STUCK_MARGIN_NANOS) - System.nanoTime()
        val stuck = loop.workerPool.awaitStopped(maxOf(0L, minOf(closeGraceNanos, left)))
        if (stuck.isEmpty()) return
        logger.log(
            System.Logger.Level.WARNING,
            "loop \"${loop.name}\" closed, but ${stuck.size} worker thread(s) still run blocking code that ignored " +
                "the interrupt; they are daemon threads and end when that code returns: " +
                stuck.joinToString("; ") { "\"${it.name}\" at ${it.stackTrace.take(5).joinToString(" <- ")}" }
        )
    }

    /**
     * On the loop thread while closing: background tasks get their grace, then are cancelled and get
     * closeGraceNanos to finish cancelling, then the callbacks run. Every wait is bounded, so the callbacks run
     * whatever the tasks do.
     */
    private suspend fun finishClosing(backgroundGraceNanos: Long) {
        val finish = loop.backgroundTasks.finish(backgroundGraceNanos, closeGraceNanos)
        if (finish.cancelled > 0 && !isRehearsal) {
            val abandoned = if (finish.abandoned.isEmpty()) "" else {
                "; ${finish.abandoned.size} of them ignored the cancellation for ${describeNanos(closeGraceNanos)} " +
                    "and were abandoned where they are: " + finish.abandoned.joinToString("; ")
            }
            logger.log(
                System.Logger.Level.WARNING,
                "loop \"${loop.name}\" closed: ${finish.cancelled} background task(s) were still running after the " +
                    "grace period of ${describeNanos(backgroundGraceNanos)} and were cancelled$abandoned"
            )
        }
        loop.shutdownCallbacks.runAll()
    }

    /**
     * Runs, on the calling thread, the shutdown callbacks the loop thread could not run ([why]); each callback
     * still runs once (see ShutdownCallbacks). Suspending callbacks get the callbacks' budget.
     */
    private fun runLeftoverCallbacks(why: String) {
        val callbacks = loop.shutdownCallbacks
        val left = callbacks.left
        if (left == 0) return
        val stuckIn = callbacks.running?.let { "; the callback ${describe(it)} has not finished" } ?: ""
        logger.log(
            System.Logger.Level.WARNING,
            "loop \"${loop.name}\": $why$stuckIn, so its $left remaining shutdown callback(s) run on thread " +
                "\"${Thread.currentThread().name}\""
        )
        // runBlocking would throw at once on an interrupted thread (one of our workers closing the loop is one).
        val interrupted = Thread.interrupted()
        try {
            runBlocking { withTimeoutOrNull(callbacksBudgetNanos.nanoseconds) { callbacks.runAll() } }
        } finally {
            if (interrupted) Thread.currentThread().interrupt()
        }
    }

    /**
     * Asked by the loop thread while closing: may it stop now? Once the closing sequence (background tasks,
     * callbacks) is done and nothing is queued: when every cancelled call has ended, or their grace has
     * passed (the stragglers' callers are then released). In any case at the overall deadline.
     */
    fun mayStop(queueEmpty: Boolean): Boolean {
        val now = System.nanoTime()
        if (now - closeDeadline >= 0) return true
        // Every close that reaches the loop thread publishes a closing sequence; until it has, the loop must
        // not take "none yet" for "done" (the callbacks would never run).
        return queueEmpty && closingSequence?.isCompleted == true &&
            ((loop.supervisorJob.isCompleted && !suspendedCalls.anyUnfinished() && !anyOnCallerThreadUnfinished()) ||
                now - callsDeadline >= 0)
    }

    /** How long the loop may park while closing: until the next deadline that could let it stop. */
    fun closeParkNanos(): Long {
        val now = System.nanoTime()
        val next = if (now - callsDeadline < 0) callsDeadline else closeDeadline
        return maxOf(1L, next - now)
    }

    /**
     * If the loop has given up on its unfinished calls, the exception to release one more caller with (one
     * whose call became reachable only after the loop released the others); else null.
     */
    fun releaseReason(): Throwable? = released?.let { IllegalStateException(it.message, it.cause) }

    /**
     * Ends the loop, on its thread as the thread's last act (or on the closing thread if it never started):
     * completes the calls that never started, releases the callers of those still running, and moves any
     * other pending task to Dispatchers.IO so its coroutine can finish cancelling.
     */
    fun terminate(fatal: Throwable?) {
        // Whatever fails in here (a class that can no longer be loaded, say), the closing thread must hear that
        // the loop has ended: the latch falls in a finally.
        try {
            deathCause = fatal
            state.set(CLOSED)
            // Order matters: calls that never started are completed as refused, and the callers of calls still
            // running are released, before anything can resume those calls elsewhere.
            val leftovers = ArrayList<DispatchedTask>()
            loop.refuseAll(loop.thread.queue.drain(), leftovers)
            releaseUnfinished(unfinishedException(fatal))
            if (fatal != null) {
                val died = CancellationException("loop thread \"${loop.thread.name}\" died", fatal)
                loop.supervisorJob.cancel(died)
                cancelSuspended(died)
            }
            suspendedCalls.clearAtEnd()
            // What is left are steps of coroutines that did not finish: let them finish cancelling elsewhere.
            for (step in leftovers) loop.moveOff(step.context, step.task)
            loop.workerPool.stop()
            if (fatal != null) reportDeath(fatal)
            runLeftoverCallbacks(if (fatal != null) "its thread died" else "it stopped at the end of its close budget")
        } finally {
            terminated.countDown()
        }
    }

    private fun reportDeath(fatal: Throwable) {
        val message = "loop thread \"${loop.thread.name}\" died; its callers were released"
        try {
            logger.logFailure(System.Logger.Level.ERROR, message, fatal)
        } catch (missing: LinkageError) {
            // The logging code itself cannot be loaded (the class loader was closed): standard error is left.
            System.err.println("corobridge: $message")
            fatal.printStackTrace()
        }
    }

    /**
     * Waits for the loop thread to end: until the close budget's end (plus a margin), or only until
     * [stuckDeadline] if by then the thread is still inside the task it was running when close began: such a
     * task has ignored the close all along, and waiting longer would only make close slower.
     */
    private fun awaitTermination() {
        val ended = LibraryThreads.awaitUninterruptibly(terminated, stuckDeadline - System.nanoTime()) || run {
            val seq = loop.thread.taskSeq
            val stuckSinceClose = seq == seqAtClose && seq and 1L == 1L
            !stuckSinceClose && LibraryThreads.awaitUninterruptibly(
                terminated, saturatedAdd(closeDeadline, STUCK_MARGIN_NANOS) - System.nanoTime()
            )
        }
        if (ended) {
            // The latch falls in the thread's last act; wait for the thread itself to be gone too.
            LibraryThreads.joinUninterruptibly(loop.thread, STUCK_MARGIN_NANOS)
            return
        }
        // The loop thread is stuck inside a task (blocking code on the loop) and cannot finish closing.
        // Release the callers now; the thread ends as soon as that task returns.
        val stuck = IllegalStateException(
            "loop thread \"${loop.thread.name}\" is stuck in a task and cannot finish the call"
        )
        stuck.stackTrace = loop.thread.stackTrace
        logger.log(
            System.Logger.Level.WARNING,
            "loop \"${loop.name}\" could not finish closing within its budget: its thread is blocked in a task " +
                "(stack attached) that ignores cancellation; its callers were released, its workers interrupted, " +
                "and the thread ends when that task returns",
            stuck
        )
        loop.refuseQueued()
        releaseUnfinished(IllegalStateException("loop \"${loop.name}\" closed while its thread was stuck in a task", stuck))
        loop.workerPool.stop() // the loop thread's last act would have; it may never come
        runLeftoverCallbacks("its thread is stuck in a task")
    }

    /** Releases the callers of every call still unfinished, each with its own copy of [reason]. */
    private fun releaseUnfinished(reason: Throwable) {
        // Published first: a caller that attaches its call after this sees it and releases itself.
        released = reason
        for (child in loop.supervisorJob.children.toList()) {
            if (child is LoopCall<*>) child.abort(IllegalStateException(reason.message, reason.cause))
        }
        for (call in latecomers) call.abort(IllegalStateException(reason.message, reason.cause))
        for (call in callerThreadCalls) call.abort(IllegalStateException(reason.message, reason.cause))
        parkedCalls.forEach { it.abort(IllegalStateException(reason.message, reason.cause)) }
        suspendedCalls.forEachUnfinished { it.abort(IllegalStateException(reason.message, reason.cause)) }
    }

    /** Keeps [call], which just suspended on the loop thread, where closing the loop finds it; loop thread only. */
    fun registerSuspended(call: LoopCall<*>) {
        suspendedCalls.add(call)
        // A close that began meanwhile may have walked the list before this call joined it: cancel it here.
        if (isClosed) call.cancel(CancellationException("loop \"${loop.name}\" is closing"))
    }

    /**
     * Keeps [call], about to start on its caller's thread, where closing finds it until it ends; any thread.
     * The set's insertion is a volatile write and the state read after it a volatile read, so either a close's
     * walk of the set meets the call, or the call meets the close here.
     */
    fun registerOnCallerThread(call: LoopCall<*>) {
        callerThreadCalls.add(call)
        if (isClosed) call.cancel(CancellationException("loop \"${loop.name}\" is closing"))
        releaseReason()?.let(call::abort) // the release may have gone by already
    }

    /**
     * Keeps [call], whose caller is about to park, where closing finds it; returns its slot, or -1 if it has
     * none: it was attached already (a call on its caller's thread is from the start), or it joins the supervisor
     * instead (a virtual thread's call, or no free slot; see ParkedCalls). Any thread. Like
     * [registerOnCallerThread], it checks the state after the call is reachable, so the call meets a close that
     * began meanwhile.
     */
    fun registerParked(call: LoopCall<*>): Int {
        val attached = call.flags and LoopCall.ATTACHED != 0
        val slot = if (attached || Spinning.isVirtual(Thread.currentThread())) -1 else parkedCalls.add(call)
        if (slot < 0) {
            call.attachToLoop() // does nothing for a call attached already
        } else if (isClosed) {
            call.cancel(CancellationException("loop \"${loop.name}\" is closing"))
        }
        releaseReason()?.let(call::abort) // the release may have gone by already
        return slot
    }

    /** Lets go of [call], which has ended; a closing loop's thread is woken to see that it may stop. */
    fun unregisterOnCallerThread(call: LoopCall<*>) {
        callerThreadCalls.remove(call)
        if (isClosed) loop.thread.wake()
    }

    private fun anyOnCallerThreadUnfinished(): Boolean = callerThreadCalls.any { !it.isCompleted }

    private fun cancelSuspended(cause: CancellationException) {
        suspendedCalls.forEachUnfinished { it.cancel(cause) }
    }

    /** Makes sure the caller of [call] is released when the loop gives up on its unfinished calls. */
    fun keepUntilReleased(call: LoopCall<*>) {
        latecomers.add(call)
        releaseReason()?.let(call::abort) // the release may have gone by already
    }

    private fun unfinishedException(fatal: Throwable?): IllegalStateException =
        if (fatal != null) {
            IllegalStateException("loop thread \"${loop.thread.name}\" died before the call finished", fatal)
        } else {
            IllegalStateException(
                "loop \"${loop.name}\" closed before the call finished (calls in flight get " +
                    "${describeNanos(closeGraceNanos)} to finish after being cancelled)"
            )
        }

    internal companion object {
        private const val OPEN = 0
        private const val CLOSING = 1
        private const val CLOSED = 2
        private val STATE_NAMES = arrayOf("open", "closing", "closed")
        private val DEFAULT_CLOSE_GRACE_NANOS = TimeUnit.SECONDS.toNanos(5)
        private val CALLBACKS_NANOS = TimeUnit.SECONDS.toNanos(5)
        private val STUCK_MARGIN_NANOS = TimeUnit.SECONDS.toNanos(1)
        private val logger: System.Logger = System.getLogger(RunSyncLoop::class.java.name)

        private fun saturatedAdd(a: Long, b: Long): Long = if (a > Long.MAX_VALUE - b) Long.MAX_VALUE / 2 else a + b
    }
}
