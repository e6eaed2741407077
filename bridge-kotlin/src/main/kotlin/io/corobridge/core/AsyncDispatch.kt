package io.corobridge.core

import io.corobridge.core.internal.runSyncWarned
import io.corobridge.core.internal.CallSites

/**
 * How a dual entry point built with [asyncDispatch] chooses between its implementations; the counterpart of
 * Prefect's `_sync=` argument.
 *
 * @since 0.1
 */
public enum class Dispatch {
    /**
     * Decide by where the call is made: on a plain thread or a worker thread, run the suspend implementation
     * on the loop and block; on a loop thread or inside a coroutine, warn once per call site and run the
     * blocking implementation if there is one.
     */
    AUTO,

    /**
     * The caller wants a blocking call and says so: run the blocking implementation on this thread if there
     * is one, else the suspend one on the loop, blocking. Never warns.
     */
    SYNC,

    /**
     * The caller wants the suspend implementation: run it on the loop and block for its result, even where
     * a blocking implementation exists. Never warns (on a loop thread the re-entry policy still applies).
     */
    ASYNC,
}

private val logger: System.Logger = System.getLogger("io.corobridge.core.AsyncDispatch")

/**
 * The body of a blocking twin of a suspend function, for library authors who offer both `load` and a suspend
 * `aload` (or `loadAsync`) without writing each twice:
 *
 * ```kotlin
 * suspend fun aload(name: String): Block = client.fetch(name)
 *
 * fun load(name: String, dispatch: Dispatch = Dispatch.AUTO): Block =
 *     asyncDispatch("BlockStore.aload", dispatch, sync = { jdbc.read(name) }) { aload(name) }
 * ```
 *
 * With [Dispatch.AUTO], where the call is made decides:
 * - on a plain thread, [async] runs on the loop and this thread blocks until it ends (as [RunSyncLoop.runSync]);
 * - on a worker thread (`runInWorkerThread`), the same, lending the worker's slot while it waits;
 * - on a loop thread, or inside a coroutine anywhere ([RunContext.isInCoroutine]), the caller should have
 *   called the suspend twin: a WARNING through the `System.Logger` named `io.corobridge.core.AsyncDispatch`
 *   says so once per call site, naming the site and [twin]. Then [sync] runs on this thread if given; if not,
 *   [async] runs on the loop, and on a loop thread the loop's [RunSyncLoop.reentryPolicy] decides (a new
 *   thread, or an [IllegalStateException]) so that it never deadlocks.
 *
 * [Dispatch.SYNC] and [Dispatch.ASYNC] choose explicitly and never warn. What the chosen implementation throws
 * reaches the caller unchanged; interrupts and cancellation behave as for [RunSyncLoop.runSync].
 *
 * @param twin the suspend function to call instead, as the warning should name it (`"BlockStore.aload"`)
 * @param dispatch the caller's choice; [Dispatch.AUTO] unless the caller passes one
 * @param sync the blocking implementation, if there is one
 * @param async the suspend implementation
 * @throws IllegalArgumentException if [twin] is blank
 * @throws IllegalStateException if the loop is closed, or a call on a loop thread is refused by
 *   [ReentryPolicy.FAIL]
 *
 * @since 0.1
 */
public fun <T> RunSyncLoop.asyncDispatch(
    twin: String,
    dispatch: Dispatch = Dispatch.AUTO,
    sync: (() -> T)? = null,
    async: suspend () -> T,
): T {
    require(twin.isNotBlank()) { "twin must name the suspend function to call instead, was blank" }
    return when (dispatch) {
        Dispatch.SYNC -> if (sync != null) sync() else runSync(async)
        Dispatch.ASYNC -> runSync(async)
        Dispatch.AUTO -> if (RunContext.isInCoroutine) { // a loop thread counts as one
            warnOnce(twin, RunContext.isOnLoopThread, sync != null)
            if (sync != null) sync() else runSyncWarned(async)
        } else {
            runSync(async)
        }
    }
}

/**
 * [RunSyncLoop.asyncDispatch] on the loop this code runs on (on its thread or one of its workers), else on
 * [RunSyncLoop.default].
 *
 * @since 0.1
 */
public fun <T> asyncDispatch(
    twin: String,
    dispatch: Dispatch = Dispatch.AUTO,
    sync: (() -> T)? = null,
    async: suspend () -> T,
): T = (RunContext.currentLoop ?: RunSyncLoop.default).asyncDispatch(twin, dispatch, sync, async)

private fun RunSyncLoop.warnOnce(twin: String, onLoop: Boolean, hasSync: Boolean) {
    // Refused under ReentryPolicy.FAIL: the exception says all a warning would.
    if (onLoop && !hasSync && reentryPolicy == ReentryPolicy.FAIL) return
    val (entry, site) = CallSites.entryPointAndCaller()
    if (!CallSites.firstTime("asyncDispatch|$twin|$site")) return
    val where = if (onLoop) {
        "on loop thread \"${Thread.currentThread().name}\""
    } else {
        "inside a coroutine on thread \"${Thread.currentThread().name}\""
    }
    val what = if (hasSync) {
        "its blocking implementation ran there and blocked the thread"
    } else if (onLoop) {
        "its suspend implementation ran on a new thread (re-entry policy NEW_THREAD), since waiting on the " +
            "loop's own thread would deadlock"
    } else {
        "its suspend implementation ran on loop \"$name\" while the coroutine's thread blocked"
    }
    logger.log(
        System.Logger.Level.WARNING,
        "$entry was called $where at $site; $what. Call the suspend twin $twin there instead, or pass " +
            "Dispatch.SYNC or Dispatch.ASYNC to choose explicitly. This warning is given once per call site."
    )
}
