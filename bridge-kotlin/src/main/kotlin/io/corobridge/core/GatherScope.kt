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
 * Thrown by [GatherScope.Handle.get] when the result is asked for before the scope has joined: results are
 * read only after the scope ends, as with Prefect's `GatherTaskGroup`.
 *
 * @since 0.1
 */
public class GatherIncompleteException(message: String) : IllegalStateException(message)

/**
 * Calls started one by one on a loop and joined together, like a [gather] whose calls are not all known up
 * front; shaped like the JDK's `StructuredTaskScope`. Made by [RunSyncLoop.openGather] (Java: `Bridge.openGather()`).
 *
 * Safe to use from any thread, though usually one thread forks, joins and closes. Each [fork] starts its call
 * on the loop at once. [join] waits for every call forked so far; the first call to fail cancels the others and
 * [join] rethrows its exception unchanged, the failures of the other calls attached as suppressed. A [Handle]
 * gives its result only once a join has covered it. [close] ends the scope: it waits for what is left (after
 * cancelling it, if a call failed), so no coroutine outlives the scope; afterwards the scope refuses new forks
 * and joins.
 *
 * In a coroutine, `join()` suspends; blocking code (and Java, where it is `join()`) calls [joinBlocking]. [close]
 * blocks, as `AutoCloseable.close` must, but only while calls are still running: after a join it returns at once,
 * so coroutine code joins first and then closes.
 *
 * ```kotlin
 * loop.openGather<User>().use { scope ->      // in a coroutine
 *     val a = scope.fork { users.load(1) }
 *     val b = scope.fork { users.load(2) }
 *     scope.join()
 *     show(a.get(), b.get())
 * }
 * ```
 *
 * ```java
 * try (GatherScope<User> scope = Bridge.openGather()) {
 *     GatherScope.Handle<User> a = scope.fork(c -> users.load(1, c));
 *     GatherScope.Handle<User> b = scope.fork(c -> users.load(2, c));
 *     scope.join();                 // blocks; rethrows the first failure
 *     show(a.get(), b.get());
 * }                                 // close(): nothing is left running
 * ```
 *
 * Until 0.2 the Kotlin core called this `GatherGroup` (with a suspend `close()`), and Java had a
 * `GatherScope` interface of its own over it.
 *
 * @since 0.1
 */
public class GatherScope<T> internal constructor(private val loop: RunSyncLoop) : AutoCloseable {
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
     * @throws IllegalStateException if the scope or its loop is closed
     * @since 0.1
     */
    @JvmSynthetic
    public fun fork(block: suspend () -> T): Handle<T> = start(block)

    /**
     * Waits, suspending, until every call forked so far has ended; then rethrows the first failure, if a call
     * failed (it cancelled the others). Cancellable: cancelling the caller cancels every call in the scope.
     *
     * @throws IllegalStateException if the scope is closed
     * @since 0.1
     */
    public suspend fun join() {
        check(!closed) { "this gather scope is closed" }
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
     * Ends the scope, blocking until no call is left running: waits for the calls still running (cancelling them
     * first if one failed), and rethrows the first failure if no join has thrown it yet. Afterwards the scope
     * refuses forks and joins; closing twice is harmless.
     *
     * Returns at once when every call has ended (after a join, say), so it is safe in a coroutine then. Otherwise
     * it waits on the loop like [RunSyncLoop.runSync] (interrupting the waiting thread cancels every call, waits
     * for them to end, and throws [java.util.concurrent.CancellationException]); on a loop thread the loop's
     * [RunSyncLoop.reentryPolicy] applies.
     *
     * @since 0.1
     */
    override fun close() {
        if (closed) return
        if (calls.all { it.isCompleted }) {
            closed = true
            rethrowUnthrown()
            return
        }
        blockingOnLoop { closeRemaining() }
    }

    private suspend fun closeRemaining() {
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
        rethrowUnthrown()
    }

    private fun rethrowUnthrown() {
        if (!failureThrown) failure.first?.let {
            failureThrown = true
            throw it
        }
    }

    /**
     * Runs [block] (the scope's join or close) on the loop, blocking. If that call is cancelled (the caller was
     * interrupted) it may not even have started, and then it cancelled nothing: cancel every call here and
     * wait, without being interruptible, until they have ended, so "an interrupted join cancels every call"
     * holds either way.
     */
    private fun blockingOnLoop(block: suspend () -> Unit) {
        try {
            loop.runSync(block)
        } catch (e: java.util.concurrent.CancellationException) {
            cancel().join()
            throw e
        }
    }

    /**
     * Cancels every call in the scope and returns at once, with a future completed when they have all ended.
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

    // ---- Java-shaped forms: fork for a SuspendCall, and the blocking join that Java calls join() ----

    /**
     * [fork] for a call in continuation-passing form, as Java writes it.
     *
     * @since 0.1
     */
    public fun fork(call: SuspendCall<T>): Handle<T> = start(call)

    /**
     * [join] for blocking code: blocks the calling thread until every call forked so far has ended, then rethrows
     * the first failure. Java calls it `join()`. Interrupting the waiting thread cancels every call in the scope,
     * waits until they have finished, sets the interrupt flag again and throws
     * [java.util.concurrent.CancellationException].
     *
     * @throws IllegalStateException if the scope is closed
     * @since 0.2 (Java: 0.1, as `join()`)
     */
    @JvmName("join")
    public fun joinBlocking() {
        blockingOnLoop { join() }
    }

    internal fun isJoined(sequence: Int): Boolean = sequence < joinedUpTo

    private fun start(call: Any): Handle<T> {
        check(!closed) { "this gather scope is closed" }
        loop.closing.checkOpen()
        val handle = Handle<T>(this, forked.getAndIncrement())
        // The caller's carried context goes with the call (a child of a coroutine inherits it anyway).
        calls.add(scope.launch(CarriedContext.capture() ?: EmptyCoroutineContext) {
            try {
                handle.succeed(CallBodies.run(call))
            } catch (e: Throwable) {
                handle.fail(e)
                if (e is CancellationException && cancelling) return@launch
                if (failure.record(e)) cancelAll(CancellationException("another call in the scope failed", e))
            }
        })
        return handle
    }

    private fun cancelAll(cause: CancellationException?) {
        cancelling = true
        for (call in calls) call.cancel(cause)
    }

    /**
     * The result of one forked call. Safe to use from any thread.
     *
     * @since 0.1 (until 0.2 the Kotlin core's `GatherHandle`)
     */
    public class Handle<T> internal constructor(private val scope: GatherScope<T>, private val sequence: Int) {
        private val outcome = AtomicReference<Any?>(PENDING)

        /**
         * Returns the call's result once the scope has joined.
         *
         * @throws GatherIncompleteException if no [GatherScope.join] has covered this call yet
         * @throws IllegalStateException if the call failed or was cancelled (the failure is the cause)
         * @since 0.1
         */
        public fun get(): T {
            if (!scope.isJoined(sequence)) {
                throw GatherIncompleteException(
                    "the call is not complete: results are read only after the gather scope has joined (call join() first)"
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
}

// ---- Entry point: a gather scope on a loop ----

/**
 * Opens a [GatherScope] on this loop: calls forked into it run on the loop and are joined together.
 *
 * @throws IllegalStateException if the loop is closed
 * @since 0.1
 */
public fun <T> RunSyncLoop.openGather(): GatherScope<T> {
    closing.checkOpen()
    return GatherScope(this)
}
