package io.corobridge.core.internal

import io.corobridge.core.RunOn
import io.corobridge.core.RunSyncLoop
import kotlin.coroutines.CoroutineContext
import kotlin.coroutines.cancellation.CancellationException
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.cancel

/*
 * How work reaches a loop, and how it is refused once the loop is closed: the blocking and future calls of the
 * public entry points, calls of background tasks, and coroutine steps dispatched to the loop.
 *
 * A call is refused at submission if the loop is no longer open (ClosingProtocol.checkOpen). A call that gets
 * past that check while the loop ends is refused by whoever sees it last: the loop's final drain, or the
 * producer itself after pushing (refuseIfEnded). Blocking calls made on a loop thread go to Reentry instead.
 */

/** No deadline: the caller waits as long as the call takes. */
internal const val NO_TIMEOUT: Long = 0L

/** Timeouts this long or longer are no deadline at all (a deadline would overflow). */
private const val UNBOUNDED_NANOS = Long.MAX_VALUE / 4

/** A blocking call of [body] (a suspend lambda or a SuspendCall) on the loop; see RunSyncLoop.runSync. */
internal fun <T> RunSyncLoop.callBlocking(body: Any, timeoutNanos: Long): T =
    fromThisThread(body, timeoutNanos) { callHere(body, timeoutNanos) }

/**
 * A blocking call made on this thread whose caller waits for another thread to run it ([wait]): on a loop thread
 * it re-enters (see Reentry), and a worker thread lends its limiter slot while it waits.
 */
private inline fun <T> RunSyncLoop.fromThisThread(body: Any, timeoutNanos: Long, wait: () -> T): T =
    when (val current = Thread.currentThread()) {
        is LoopThread -> reenter(body, timeoutNanos)
        is WorkerThread -> current.lendingSlot(wait)
        else -> wait()
    }

/** A blocking call run where [runOn] says. */
internal fun <T> RunSyncLoop.callBlockingOn(runOn: RunOn, body: Any, timeoutNanos: Long): T =
    when (runOn) {
        RunOn.LOOP -> callBlocking(body, timeoutNanos)
        // A worker thread keeps its slot: it runs the call itself rather than waiting for the loop.
        RunOn.CALLER_THREAD ->
            if (Thread.currentThread() is LoopThread) reenter(body, timeoutNanos) else callHere(body, timeoutNanos, true)
        RunOn.NEW_THREAD -> fromThisThread(body, timeoutNanos) { callOnNewThread(body, timeoutNanos) }
    }

/** A blocking call from a thread that may wait: runs it on the loop, or on this thread if [onCaller]. */
internal fun <T> RunSyncLoop.callHere(body: Any, timeoutNanos: Long, onCaller: Boolean = false): T =
    countedBlockingCall {
        val call = if (onCaller) CallerThreadCall(this, body) else BlockingCall<T>(this, body)
        if (call is CallerThreadCall) {
            call.runHere(timeoutNanos)
        } else {
            submit(call)
            call.await(timeoutNanos)
        }
    }

/**
 * What every blocking call does around its wait ([wait]): refuses a caller already interrupted and a closed loop,
 * counts the call in the loop's statistics, and records its JFR event.
 */
internal inline fun <T> RunSyncLoop.countedBlockingCall(wait: () -> T): T {
    if (Thread.currentThread().isInterrupted) {
        throw java.util.concurrent.CancellationException(
            "the calling thread was interrupted before the call on loop \"$name\" started; it was not run"
        )
    }
    closing.checkOpen()
    val event = CallEvents.begin()
    counters.callsStarted.increment()
    try {
        return wait()
    } finally {
        counters.callsEnded.increment()
        if (event != null) CallEvents.end(event, name)
    }
}

/** A call of [body] on the loop whose result is a future; see RunSyncLoop.runAsync. */
internal fun <T> RunSyncLoop.callAsync(body: Any): java.util.concurrent.CompletableFuture<T> {
    closing.checkOpen()
    counters.callsStarted.increment()
    val call = FutureCall<T>(this, body)
    submit(call)
    return call.future
}

/** Submits a call made elsewhere in the module (a background task's). */
internal fun RunSyncLoop.submitCall(call: LoopCall<*>) {
    closing.checkOpen()
    counters.otherTasksAdded.increment()
    submit(call)
}

private fun RunSyncLoop.submit(call: LoopCall<*>) {
    thread.enqueue(call)
    closing.startIfNeeded()
    refuseIfEnded()
}

/** Runs a coroutine step on the loop thread (the loop's dispatcher), or elsewhere once the loop has ended. */
internal fun RunSyncLoop.dispatchStep(context: CoroutineContext, task: Runnable) {
    if (closing.hasEnded) {
        moveOff(context, task)
        return
    }
    val loopThread = thread
    // A step the loop dispatches to itself (a coroutine on the loop resuming itself, as yield() does) is counted
    // on the loop thread's own cache line: the shared counter sits beside those that callers bump at every call,
    // and taking that line from a spinning caller made a call that suspends once cost 2.2 x an immediate one,
    // against 1.7 x this way (benchmarks' SuspendCost).
    if (Thread.currentThread() === loopThread) loopThread.countOwnStep() else counters.otherTasksAdded.increment()
    loopThread.enqueue(DispatchedTask(task, context))
    closing.startIfNeeded()
    refuseIfEnded()
}

/**
 * The loop may have ended after a producer's state check; then either its last drain took the producer's
 * task, or the producer takes everything still queued here. Never both, never neither.
 */
private fun RunSyncLoop.refuseIfEnded() {
    if (closing.hasEnded) refuseQueued()
}

/** Refuses every task pushed and not yet taken by the loop thread; safe from any thread. */
internal fun RunSyncLoop.refuseQueued() {
    val leftovers = ArrayList<DispatchedTask>()
    refuseAll(thread.queue.takePushed(), leftovers)
    for (step in leftovers) moveOff(step.context, step.task)
}

/** Completes the calls in [chain] as refused; collects the dispatched steps into [steps]. */
internal fun RunSyncLoop.refuseAll(chain: QueuedTask?, steps: MutableList<DispatchedTask>) {
    var task = chain
    while (task != null) {
        val next = task.nextInQueue
        task.nextInQueue = null
        when (task) {
            is LoopCall<*> -> task.reject(closing.closedException())
            is DispatchedTask -> steps.add(task)
        }
        task = next
    }
}

/**
 * Runs a coroutine step dispatched to the closed loop elsewhere, after cancelling its coroutine, unless the
 * coroutine says it ends itself (see [EndsItselfOffLoop]).
 */
internal fun RunSyncLoop.moveOff(context: CoroutineContext, task: Runnable) {
    if (context[EndsItselfOffLoop] == null) {
        context.cancel(CancellationException("loop \"$name\" is closed; the coroutine finishes on Dispatchers.IO"))
    }
    Dispatchers.IO.dispatch(context, task)
}

/**
 * Marks a coroutine that sees for itself that its loop has closed and ends as it must, so a step dispatched to
 * the closed loop moves off it uncancelled. A kotlinx publisher's subscription needs it: cancelled before its
 * first step, it would end without ever telling its subscriber.
 */
internal object EndsItselfOffLoop : CoroutineContext.Element, CoroutineContext.Key<EndsItselfOffLoop> {
    override val key: CoroutineContext.Key<*>
        get() = this
}

/** A positive java.time timeout in nanoseconds, or NO_TIMEOUT for one too long to be a deadline. */
internal fun timeoutNanos(timeout: java.time.Duration): Long {
    require(!timeout.isNegative && !timeout.isZero) { "timeout must be positive, was $timeout" }
    return boundedNanos(timeout.nanosOr(Long.MAX_VALUE))
}

/** A timeout so long that a deadline would overflow is no deadline at all. */
internal fun boundedNanos(nanos: Long): Long = if (nanos >= UNBOUNDED_NANOS) NO_TIMEOUT else nanos
