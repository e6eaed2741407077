package io.corobridge.core

import io.corobridge.core.internal.CallBodies
import io.corobridge.core.internal.CallerThreadCall
import io.corobridge.core.internal.CoroutineThreads
import io.corobridge.core.internal.loopOfThisCoroutine
import io.corobridge.core.internal.LoopThread
import io.corobridge.core.internal.WorkerThread

/**
 * Runs blocking [block] on a worker thread of the loop this coroutine runs on (or of [RunSyncLoop.default]
 * when it runs elsewhere) and suspends until it returns; see [RunSyncLoop.runInWorkerThread].
 *
 * @since 0.1
 */
public suspend fun <T> runInWorkerThread(block: () -> T): T = loopOfThisCoroutine().runInWorkerThread(block)

/**
 * From blocking code on a worker thread: runs the suspend [block] on the worker's loop and blocks this worker
 * (and only it) until the block ends, returning its result or throwing what it threw. The Kotlin counterpart
 * of Prefect's `run_async_from_worker_thread`.
 *
 * While it waits, the worker lends its limiter slot to the calls it waits for, and takes a slot again before
 * going on; so loop -> worker -> loop -> worker... nests to any depth without exhausting the limiter.
 * Interrupts, timeouts and failures behave as for [RunSyncLoop.runSync].
 *
 * @throws IllegalStateException if called anywhere but on a worker thread (use [RunSyncLoop.runSync] there),
 *   or if the loop is closed
 * @throws java.util.concurrent.CancellationException if this worker was abandoned (its caller was cancelled):
 *   its result would be discarded anyway
 *
 * @since 0.2
 */
public fun <T> runOnLoop(block: suspend () -> T): T {
    val worker = Thread.currentThread() as? WorkerThread
        ?: throw IllegalStateException(
            "runOnLoop must be called on a worker thread (inside runInWorkerThread { ... }); it was called on " +
                "\"${Thread.currentThread().name}\". Elsewhere use loop.runSync { ... } (Bridge.sync from Java)."
        )
    RunContext.ensureNotAbandoned()
    return worker.loop.runSync(block)
}

/**
 * Where the current code runs, as far as corobridge is concerned. Every member reads the current thread only
 * and is cheap enough to call on every call.
 *
 * @since 0.1
 */
public object RunContext {
    /** True on a loop's own thread, that is, inside a coroutine or call running on a [RunSyncLoop]. */
    @JvmStatic
    public val isOnLoopThread: Boolean
        get() = Thread.currentThread() is LoopThread

    /** True on a worker thread, that is, inside blocking code started by `runInWorkerThread`. */
    @JvmStatic
    public val isInWorkerThread: Boolean
        get() = Thread.currentThread() is WorkerThread

    /**
     * True inside a coroutine: on a loop's thread, on a thread of kotlinx's `Dispatchers.Default` or
     * `Dispatchers.IO` (coroutines, `withContext` blocks), while `runBlocking` (or an unconfined coroutine)
     * runs on the current thread, and while a call made with [RunOn.CALLER_THREAD] runs on it. False in plain threads and in the blocking code of a worker thread, even
     * when a coroutine waits for it. This is what dual entry points ([asyncDispatch]) ask before they block.
     *
     * It costs nanoseconds: it reads the thread and what kotlinx.coroutines keeps per thread, not the stack.
     * So coroutines on a dispatcher made from an executor of your own (`asCoroutineDispatcher()`) are not
     * recognised: their threads are plain threads.
     */
    @JvmStatic
    public val isInCoroutine: Boolean
        get() {
            val thread = Thread.currentThread()
            return thread is LoopThread || CoroutineThreads.isSchedulerThread(thread) ||
                CoroutineThreads.isEventLoopActive() || CallerThreadCall.isRunningHere()
        }

    /** The loop whose thread or worker thread this is, or null elsewhere. */
    @JvmStatic
    public val currentLoop: RunSyncLoop?
        get() = when (val thread = Thread.currentThread()) {
            is LoopThread -> thread.loop
            is WorkerThread -> thread.loop
            else -> null
        }

    /**
     * True in blocking code on a worker thread whose caller was cancelled: nobody waits for its result any
     * more, and it may stop early. False everywhere else.
     */
    @JvmStatic
    public val isAbandoned: Boolean
        get() = (Thread.currentThread() as? WorkerThread)?.current?.abandoned == true

    /**
     * For blocking code that checks cooperatively: throws if this worker was abandoned ([isAbandoned]).
     *
     * @throws java.util.concurrent.CancellationException if it was
     * @since 0.1
     */
    @JvmStatic
    public fun ensureNotAbandoned() {
        if (isAbandoned) {
            throw java.util.concurrent.CancellationException(
                "the caller of this worker thread's blocking call was cancelled; its result would be discarded"
            )
        }
    }
}

// ---- Entry points: worker threads of a loop ----

/**
 * Runs blocking [block] on one of the loop's worker threads and suspends until it returns, with its
 * result or what it threw: the way to call blocking Java code from a coroutine without stalling the loop
 * (Prefect's `run_sync_in_worker_thread`).
 *
 * At most [RunSyncLoop.workerLimit] blocks run at once; a call beyond that suspends, first come first served, until a
 * slot is free. Worker threads (daemons named `corobridge-worker-<loop>-<n>`) are made when needed and end
 * after 10 s idle, or when the loop closes. Inside [block], [RunContext.isInWorkerThread] is true, and
 * [runOnLoop] (or `Bridge.sync`) runs suspend code on the loop, blocking only this worker.
 *
 * Cancelling the calling coroutine abandons the worker at once: the coroutine resumes with
 * [CancellationException] right away, while the thread finishes [block] undisturbed (it is not
 * interrupted) and its late result or failure is discarded (a failure is logged at DEBUG). It keeps its slot
 * until it really ends, so no more than [RunSyncLoop.workerLimit] threads ever run blocking code; [block] can check
 * [RunContext.isAbandoned] to stop early. Closing the loop interrupts workers still running.
 *
 * @throws IllegalStateException if the loop is closed
 * @since 0.1
 */
public suspend fun <T> RunSyncLoop.runInWorkerThread(block: () -> T): T = workerPool.run(block)

// ---- Java-shaped form (a SuspendCall, Runnable or Callable, as Java writes them) ----
/**
 * [runInWorkerThread] for Java: a computation in continuation-passing form that runs [block] on a worker
 * thread when it is started, for use with `runSync`, `runAsync`, gathers and background tasks. Checked
 * exceptions [block] throws reach the caller unchanged.
 *
 * @since 0.2
 */
public fun <T> RunSyncLoop.inWorkerThread(block: java.util.concurrent.Callable<out T>): SuspendCall<T> {
    return CallBodies.asCall { runInWorkerThread(block::call) }
}
