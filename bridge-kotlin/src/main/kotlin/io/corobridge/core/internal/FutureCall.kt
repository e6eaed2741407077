package io.corobridge.core.internal

import io.corobridge.core.RunSyncLoop
import java.util.concurrent.CompletableFuture
import java.util.concurrent.TimeUnit

/** A call whose outcome completes a [CompletableFuture]; see [LoopFuture] for how the future talks back. */
internal open class FutureCall<T>(loop: RunSyncLoop, body: Any) : LoopCall<T>(loop, body) {
    @JvmField
    val future: LoopFuture<T> = LoopFuture(this)

    /** Whether this call counts in the loop's calls in flight; background tasks count on their own. */
    open val countsAsCall: Boolean
        get() = true

    init {
        // A future may be waited on for long, or dropped: closing the loop must reach it even while queued.
        attachToLoop()
    }

    override fun onCompleted(value: T) {
        future.completeFromCall(value)
        ended(value, null)
    }

    override fun onCancelled(cause: Throwable, handled: Boolean) {
        val failure = callerFailure(cause)
        future.failFromCall(failure)
        ended(null, failure)
    }

    override fun abort(reason: Throwable) {
        future.failFromCall(reason)
        ended(null, reason)
    }

    /**
     * Called once the future holds the outcome, on the thread that ended the call; more than once if the call is
     * aborted after it ended, so an override must act only once (background tasks do).
     */
    protected open fun ended(value: T?, failure: Throwable?) {}
}

/*
 * The future handed to the caller. Completing it from outside (cancel, complete, completeExceptionally, and
 * so orTimeout) cancels the coroutine, since nobody can observe its result any more. The call completes it
 * through the *FromCall methods, which go to the superclass directly and so do not count as "from outside".
 *
 * Completing a CompletableFuture runs its dependent stages on the completing thread, and one of those can
 * throw out of complete(): CompletableFuture wraps a failure in a CompletionException for each dependent, and
 * that constructor calls the failure's toString(), which may throw. The future is complete all the same, so
 * neither the call's end nor the cancellation of its coroutine may depend on complete() returning normally.
 *
 * Blocking on it from its own loop thread while it is not done would wait for work that only that thread can
 * run; get/join refuse that with an IllegalStateException instead of hanging. Elsewhere they spin briefly
 * before the future's own parking wait, as blocking calls do.
 */
internal class LoopFuture<T>(private val call: FutureCall<T>) : CompletableFuture<T>() {
    fun completeFromCall(value: T) {
        fromCall { super.complete(value) }
    }

    fun failFromCall(failure: Throwable) {
        fromCall { super.completeExceptionally(failure) }
    }

    override fun cancel(mayInterruptIfRunning: Boolean): Boolean =
        fromOutside("its future was cancelled") { super.cancel(mayInterruptIfRunning) }

    override fun complete(value: T): Boolean =
        fromOutside("its future was completed from outside") { super.complete(value) }

    override fun completeExceptionally(ex: Throwable): Boolean =
        // The message names the exception by its class only: its toString() is user code, and may throw.
        fromOutside("its future was completed exceptionally from outside, with a ${ex.javaClass.name}") {
            super.completeExceptionally(ex)
        }

    /** The call completes the future; a dependent stage that throws is reported, not passed to the call. */
    private inline fun fromCall(complete: () -> Boolean) {
        val completed = try {
            complete()
        } catch (stage: Throwable) {
            if (stage is VirtualMachineError) throw stage
            call.loop.reportFailure(stage)
            isDone
        }
        ended(completed)
    }

    /** Someone completes the future from outside: the call is cancelled even if a dependent stage throws. */
    private inline fun fromOutside(reason: String, complete: () -> Boolean): Boolean {
        val completed = try {
            complete()
        } catch (stage: Throwable) {
            // The future is complete (only its dependents failed): stop the call, then let the caller see it.
            if (isDone) {
                ended(true)
                call.cancelAsCaller(reason)
            }
            throw stage
        }
        ended(completed)
        if (completed) call.cancelAsCaller(reason)
        return completed
    }

    /**
     * A future completes once: the one transition that succeeds ends the call for the loop's statistics (the
     * call's ENDED flag makes sure of it when a dependent stage's failure hid whether this one succeeded).
     */
    private fun ended(transitioned: Boolean) {
        if (transitioned && call.setFlag(LoopCall.ENDED) && call.countsAsCall) call.loop.counters.callsEnded.increment()
    }

    override fun get(): T {
        refuseSelfWait()
        Spinning.spinUntil(call.loop) { isDone }
        return whileLendingSlot { super.get() }
    }

    override fun get(timeout: Long, unit: TimeUnit): T {
        refuseSelfWait()
        Spinning.spinUntil(call.loop) { isDone }
        return whileLendingSlot { super.get(timeout, unit) }
    }

    override fun join(): T {
        refuseSelfWait()
        Spinning.spinUntil(call.loop) { isDone }
        return whileLendingSlot { super.join() }
    }

    /**
     * On a worker thread, waits with the worker's limiter slot lent out, as a blocking call does: the call may
     * itself need a worker, and with every slot held by workers that wait, none would ever come free.
     */
    private inline fun whileLendingSlot(wait: () -> T): T {
        if (isDone) return wait()
        val worker = Thread.currentThread() as? WorkerThread ?: return wait()
        return worker.lendingSlot(wait)
    }

    private fun refuseSelfWait() {
        if (!isDone && call.loop.isLoopThread()) {
            throw IllegalStateException(
                "waiting for a future of loop \"${call.loop.name}\" on that loop's own thread would deadlock: " +
                    "the loop cannot run the call while it waits. Suspend on it instead (await()), or add a " +
                    "dependent stage with thenApply/whenComplete."
            )
        }
    }
}
