package io.corobridge.core

/**
 * What a blocking call into a [RunSyncLoop] does when it is made on a loop thread, where waiting for the
 * loop would deadlock: the loop cannot run the call while its own thread waits for it.
 *
 * "A loop thread" is the thread of any [RunSyncLoop], including the short-lived loops that [NEW_THREAD]
 * starts, so re-entry is caught at any depth of nesting. A worker thread (code moved off the loop) is not a
 * loop thread: blocking it is safe, and the call runs on the loop as usual.
 *
 * @since 0.1
 */
public enum class ReentryPolicy {
    /**
     * Run the call on a new thread with an event loop of its own, wait for it there, and log a warning once
     * per call site that names the better alternative (call the suspend function directly, or use the
     * future-returning form). This is the default, and what Prefect's `run_coro_as_sync` does.
     *
     * Code that needs the blocked loop itself (a client bound to it) cannot finish on the new thread; the
     * warning is there so such call sites get fixed.
     */
    NEW_THREAD,

    /** Throw [IllegalStateException] explaining the deadlock, without running the call. */
    FAIL,
}
