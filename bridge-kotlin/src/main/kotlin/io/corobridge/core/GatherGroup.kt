package io.corobridge.core

import io.corobridge.core.internal.CallBodies
import java.util.concurrent.CompletableFuture
import java.util.concurrent.atomic.AtomicInteger
import java.util.concurrent.atomic.AtomicReference
import kotlinx.coroutines.CancellationException
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.NonCancellable
import kotlinx.coroutines.Job
import kotlinx.coroutines.future.asCompletableFuture
import kotlinx.coroutines.joinAll
import kotlinx.coroutines.launch
import io.corobridge.core.internal.CarriedContext
import kotlin.coroutines.EmptyCoroutineContext
import kotlinx.coroutines.withContext

/**
 * Thrown by [GatherHandle.get] when the result is asked for before the group has joined: results are
 * read only after the group ends, as with Prefect's `GatherTaskGroup`.
 *
 * @since 0.1
 */
public class GatherIncompleteException(message: String) : IllegalStateException(message)

/**
 * A group of calls started one by one on a loop and joined together, like a [gather] whose calls are not
 * all known up front. Made by [RunSyncLoop.openGather]; Java callers use `io.corobridge.GatherScope`.
 *
 * Safe to use from any thread. Each [fork] starts its call on the loop at once. [join] waits for every call
 * forked so far; the first call to fail cancels the others and [join] rethrows its exception unchanged, the
 * failures of the other calls attached as suppressed. A [GatherHandle] gives its result only once a [join]
 * has covered it. [close] ends the group: it waits for what is left (after cancelling it, if a call failed),
 * so no coroutine outlives the group; afterwards the group refuses new forks and joins.
 *
 * ```kotlin
 * val group = loop.openGather<User>()
 * val a = group.fork { users.load(1) }
 * val b = group.fork { users.load(2) }
 * group.join()
 * show(a.get(), b.get())
 * group.close()
 * ```
 *
 * @since 0.1
 */
public class GatherGroup<T> internal constructor(private val loop: RunSyncLoop) {
    /*
     * Each call is a child of the loop's supervisor itself (so closing the loop cancels it, and it leaves the
     * supervisor when it ends), and the group keeps its calls in a list of its own. A job of the group's own
     * under the loop's supervisor would stay there, one node per group, until the group was closed: a group
     * that was joined and dropped without close() leaked it for the loop's lifetime (a soak run grew the heap
     * by 12 MiB a minute).
     */
    private val calls = java.util.concurrent.ConcurrentLinkedQueue<Job>()
    private val scope = CoroutineScope(loop.dispatcher + loop.supervisorJob)
    private val failure = FirstFailure()
    private val forked = AtomicInteger()

    @Volatile
    private var joinedUpTo = 0

    @Volatile
    private var closed = false

    @Volatile
    private var failureThrown = false

    /** Set before the group cancels its calls, so the cancellations it causes are not taken for failures. */
    @Volatile
    private var cancelling = false

    /**
     * Starts [block] on the loop and returns its handle at once.
     *
     * @throws IllegalStateException if the group or its loop is closed
     * @since 0.1
     */
    @JvmSynthetic
    public fun fork(block: suspend () -> T): GatherHandle<T> = start(block)

    /**
     * [fork] for a call in continuation-passing form, as Java writes it.
     *
     * @since 0.1
     */
    public fun fork(call: SuspendCall<T>): GatherHandle<T> = start(call)

    /**
     * Waits, suspending, until every call forked so far has ended; then rethrows the first failure, if a call
     * failed (it cancelled the others). Cancellable: cancelling the caller cancels every call in the group.
     *
     * @throws IllegalStateException if the group is closed
     * @since 0.1
     */
    public suspend fun join() {
        check(!closed) { "this gather group is closed" }
        val upTo = forked.get()
        try {
            calls.toList().joinAll()
        } catch (e: CancellationException) {
            // The caller was cancelled: cancel the calls and wait (uncancellably) until they have finished.
            cancelAll(e)
            withContext(NonCancellable) { calls.toList().joinAll() }
            throw e
        }
        if (upTo > joinedUpTo) joinedUpTo = upTo
        failure.first?.let {
            failureThrown = true
            throw it
        }
    }

    /**
     * Ends the group: waits for the calls still running (cancelling them first if one failed), and rethrows
     * the first failure if no [join] has thrown it yet. Closing twice is harmless.
     *
     * @since 0.1
     */
    public suspend fun close() {
        if (closed) return
        closed = true
        try {
            if (failure.happened) cancelAll(null)
            calls.toList().joinAll()
        } catch (e: CancellationException) {
            cancelAll(e)
            withContext(NonCancellable) { calls.toList().joinAll() }
            throw e
        }
        if (!failureThrown) failure.first?.let {
            failureThrown = true
            throw it
        }
    }

    /**
     * Cancels every call in the group and returns at once, with a future completed when they have all ended.
     * For callers that cannot suspend: a blocking join whose own call was cancelled before it ever ran on the
     * loop uses this to keep its promise that every call is cancelled.
     *
     * @since 0.1
     */
    public fun cancel(): CompletableFuture<Unit> {
        cancelAll(null)
        // Each call's end, however it ended: cancelled calls complete their futures exceptionally.
        val ends = calls.map { call -> call.asCompletableFuture().handle { _, _ -> } }
        return CompletableFuture.allOf(*ends.toTypedArray()).thenApply { }
    }

    internal fun isJoined(sequence: Int): Boolean = sequence < joinedUpTo

    private fun start(call: Any): GatherHandle<T> {
        check(!closed) { "this gather group is closed" }
        loop.closing.checkOpen()
        val handle = GatherHandle<T>(this, forked.getAndIncrement())
        // The caller's carried context goes with the call (a child of a coroutine inherits it anyway).
        calls.add(scope.launch(CarriedContext.capture() ?: EmptyCoroutineContext) {
            try {
                handle.succeed(CallBodies.run(call))
            } catch (e: Throwable) {
                handle.fail(e)
                if (e is CancellationException && cancelling) return@launch
                if (failure.record(e)) cancelAll(CancellationException("another call in the group failed", e))
            }
        })
        return handle
    }

    private fun cancelAll(cause: CancellationException?) {
        cancelling = true
        for (call in calls) call.cancel(cause)
    }
}

/**
 * The result of one call forked into a [GatherGroup]. Safe to use from any thread.
 *
 * @since 0.1
 */
public class GatherHandle<T> internal constructor(private val group: GatherGroup<T>, private val sequence: Int) {
    private val outcome = AtomicReference<Any?>(PENDING)

    /**
     * Returns the call's result once the group has joined.
     *
     * @throws GatherIncompleteException if no [GatherGroup.join] has covered this call yet
     * @throws IllegalStateException if the call failed or was cancelled (the failure is the cause)
     * @since 0.1
     */
    public fun get(): T {
        if (!group.isJoined(sequence)) {
            throw GatherIncompleteException(
                "the call is not complete: results are read only after the gather has joined (call join() first)"
            )
        }
        val result = outcome.get()
        if (result is Failed) {
            throw IllegalStateException(
                if (result.cause is CancellationException) "the call was cancelled" else "the call failed",
                result.cause,
            )
        }
        if (result === PENDING) throw IllegalStateException("the call was cancelled before it started")
        @Suppress("UNCHECKED_CAST")
        return result as T
    }

    internal fun succeed(value: T) {
        outcome.compareAndSet(PENDING, value)
    }

    internal fun fail(cause: Throwable) {
        outcome.compareAndSet(PENDING, Failed(cause))
    }

    private class Failed(val cause: Throwable)

    private companion object {
        val PENDING = Any()
    }
}
