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
    }

    override fun onCancelled(cause: Throwable, handled: Boolean) {
        future.failFromCall(callerFailure(cause))
    }

    override fun abort(reason: Throwable) {
        future.failFromCall(reason)
    }
}

/*
 * The future handed to the caller. Completing it from outside (cancel, complete, completeExceptionally, and
 * so orTimeout) cancels the coroutine, since nobody can observe its result any more. The call completes it
 * through the *FromCall methods, which go to the superclass directly and so do not count as "from outside".
 *
 * Blocking on it from its own loop thread while it is not done would wait for work that only that thread can
 * run; get/join refuse that with an IllegalStateException instead of hanging. Elsewhere they spin briefly
 * before the future's own parking wait, as blocking calls do.
 */
internal class LoopFuture<T>(private val call: FutureCall<T>) : CompletableFuture<T>() {
    fun completeFromCall(value: T) {
        ended(super.complete(value))
    }

    fun failFromCall(failure: Throwable) {
        ended(super.completeExceptionally(failure))
    }

    override fun cancel(mayInterruptIfRunning: Boolean): Boolean {
        val cancelled = ended(super.cancel(mayInterruptIfRunning))
        if (cancelled) call.cancelAsCaller("its future was cancelled")
        return cancelled
    }

    override fun complete(value: T): Boolean {
        val completed = ended(super.complete(value))
        if (completed) call.cancelAsCaller("its future was completed from outside")
        return completed
    }

    override fun completeExceptionally(ex: Throwable): Boolean {
        val completed = ended(super.completeExceptionally(ex))
        if (completed) call.cancelAsCaller("its future was completed exceptionally from outside: $ex")
        return completed
    }

    /** A future completes once: the one transition that succeeds ends the call for the loop's statistics. */
    private fun ended(transitioned: Boolean): Boolean {
        if (transitioned && call.countsAsCall) call.loop.futureCallEnded()
        return transitioned
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
