package io.corobridge.core.internal

import io.corobridge.core.RunSyncLoop
import java.util.concurrent.locks.LockSupport
import kotlin.coroutines.CoroutineContext

/*
 * RunOn.CALLER_THREAD: a call whose coroutine runs on its caller's own thread, in an event loop that lives as
 * long as the call, as runBlocking runs one. Everything else is a BlockingCall's: the outcome slot, the
 * caller's deadline and interrupt (which cancel the call and wait for it to finish cancelling), the
 * exception unchanged with the caller's frames, the captured context, the loop's statistics, and closing:
 * the call is in its loop's set of calls on callers' threads (see ClosingProtocol) from before it starts, so
 * closing the loop cancels it and, after the grace period, releases its caller.
 *
 * The caller runs the first step itself, then, until the call has an outcome, runs the steps the call's
 * dispatcher (its CallerEventLoop) queued, and parks when there are none. A step resumed by another thread
 * (an I/O completion) is queued and the caller unparked: one hop, where a call on the loop takes two (I/O
 * thread to the loop, the loop to the caller) and a third to start.
 */
internal class CallerThreadCall<T> private constructor(
    private val events: CallerEventLoop,
    body: Any,
) : BlockingCall<T>(CarriedContext.callContext(events), body) {

    constructor(loop: RunSyncLoop, body: Any) : this(CallerEventLoop(loop, Thread.currentThread()), body)

    /**
     * A call that [runner], a thread not yet started, will run with [runHere] (RunOn.NEW_THREAD). Made on the
     * caller's thread, so the context carriers capture the caller's values.
     */
    constructor(loop: RunSyncLoop, body: Any, runner: Thread) : this(CallerEventLoop(loop, runner), body)

    /** Runs the call here, on the caller's thread, and returns its result; see [BlockingCall.await]. */
    fun runHere(timeoutNanos: Long): T {
        val outer = current.get()
        current.set(events)
        try {
            return await(timeoutNanos)
        } finally {
            current.set(outer)
        }
    }

    override fun beforeWaiting() {
        // Reachable by closing before it starts, not only once it suspends (as a call on the loop thread
        // becomes): the loop does not see it start, so only this way can a close that comes while the first
        // step runs know that the call is in flight, cancel it and wait for it.
        attachToLoop()
        run() // the first step, on this thread
    }

    /**
     * Joins the loop's set of calls on their callers' threads rather than the supervisor's children: every
     * caller-thread call attaches before it starts, and at 8 callers and more the compare-and-sets of all of
     * them on the supervisor's one child list cost more than the calls (a trivial call: 2.6 calls per µs from 8
     * threads against 5.1 from one; benchmarks' CallerScale). The set spreads them over its bins.
     */
    override fun attachToLoop() {
        if (setFlag(ATTACHED)) loop.closing.registerOnCallerThread(this)
    }

    override fun onCompleted(value: T) {
        super.onCompleted(value)
        loop.closing.unregisterOnCallerThread(this)
    }

    override fun onCancelled(cause: Throwable, handled: Boolean) {
        super.onCancelled(cause, handled)
        loop.closing.unregisterOnCallerThread(this)
    }

    override fun waitOnce(nanos: Long) {
        events.runOneOrPark(nanos) { isPending() }
    }

    override fun afterWaiting() {
        events.close()
    }

    internal companion object {
        /** The event loop of the innermost call running on this thread, if any (for RunContext.isInCoroutine). */
        private val current = ThreadLocal<CallerEventLoop?>()

        fun isRunningHere(): Boolean = current.get() != null
    }
}

/**
 * The dispatcher of one [CallerThreadCall]: a queue that its caller, [owner], empties while it waits. A
 * [LoopDispatcher] of [loop], so that the call and code that asks for "the current loop" find it.
 *
 * Hand-off as on the loop thread (see LoopThread): a producer pushes and then reads [waiting]; the owner sets
 * [waiting] and then re-reads the queue before parking, so one of the two sees the other. Once the call has
 * ended the owner closes the queue: steps dispatched later (by a coroutine that escaped the call with its
 * context) and steps still queued go to the loop's own thread, so nothing is left unrun. [close] and a late
 * producer both take what is pushed with one atomic swap, so each step is taken by exactly one of them.
 */
internal class CallerEventLoop(loop: RunSyncLoop, private val owner: Thread) : LoopDispatcher(loop) {
    private val queue = TaskQueue()

    @Volatile
    private var waiting = false

    @Volatile
    private var closed = false

    override fun dispatch(context: CoroutineContext, block: Runnable) {
        queue.push(DispatchedTask(block, context))
        if (closed) {
            forward(queue.takePushed())
        } else if (waiting) {
            LockSupport.unpark(owner)
        }
    }

    /** Owner only: runs the oldest queued step, or parks for at most [nanos] (0: no limit) while [pending]. */
    inline fun runOneOrPark(nanos: Long, pending: () -> Boolean) {
        val step = queue.poll()
        if (step != null) {
            runStep(step)
            return
        }
        waiting = true
        if (queue.isEmpty() && pending()) {
            if (nanos > 0L) LockSupport.parkNanos(this, nanos) else LockSupport.park(this)
        }
        waiting = false
    }

    fun runStep(step: QueuedTask) {
        try {
            step.run()
        } catch (failure: Throwable) {
            // As on the loop thread: a step's failure is reported, and the call goes on.
            loop.reportFailure(failure)
        }
    }

    /** Owner only: from now on steps go to the loop's thread, those still queued included. */
    fun close() {
        closed = true
        forward(queue.drain())
    }

    private fun forward(chain: QueuedTask?) {
        var task = chain
        while (task != null) {
            val next = task.nextInQueue
            task.nextInQueue = null
            val step = task as DispatchedTask
            loop.dispatchStep(step.context, step.task)
            task = next
        }
    }

    override fun toString(): String = "RunSyncLoop(\"${loop.name}\").callerThread(\"${owner.name}\")"
}
