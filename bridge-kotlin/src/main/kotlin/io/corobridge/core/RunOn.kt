package io.corobridge.core

/**
 * Where a blocking call ([RunSyncLoop.runSync], `Bridge.sync`) runs its coroutine.
 *
 * @since 0.2
 */
public enum class RunOn {
    /**
     * On the loop's own thread, with every other call on the loop: the default. Code that keeps state bound
     * to the loop (a client made on it, data only the loop thread touches) can rely on every call seeing it
     * from one thread, as Prefect's run-sync loop promises. The price is the hop: the call starts on the loop,
     * each resumption (an I/O completion) goes to the loop, and the result goes back to the caller; and all
     * the calls' CPU work shares the one loop thread.
     */
    LOOP,

    /**
     * On the calling thread itself, in an event loop of the call's own that lives as long as the call, as
     * `runBlocking` runs one: the first step runs at once on the caller, and a resumption from another thread
     * wakes the caller directly. For calls that share no state bound to the loop, it saves the hops to the
     * loop and back and lets many callers' CPU work run in parallel; on real I/O it is what makes the blocking
     * call as fast as a hand-written `runBlocking` (see docs/benchmarks.md).
     *
     * Everything else holds as on the loop: re-entry (made on a loop thread, the loop's [ReentryPolicy]
     * applies, never a deadlock), interrupt and timeout cancel the call and wait for it to finish cancelling,
     * exceptions reach the caller unchanged with its frames, context carriers, concurrency limits, the loop's
     * statistics, and closing the loop cancels the call. Code inside the call that switches to
     * `loop.dispatcher` runs on the loop as usual. A coroutine launched inside the call that outlives it
     * (in a scope of its own, with the call's dispatcher) continues on the loop's thread once the call has
     * returned.
     */
    CALLER_THREAD,

    /**
     * On a new thread made for this call, in an event loop of the call's own, while the caller waits: Prefect's
     * `force_new_thread`. For code that must share neither the loop's thread nor the caller's: a call that may
     * block its thread for long (the loop's watchdog would report it, and it would hold every other call up),
     * or one that leaves thread-local state behind. It runs exactly as [CALLER_THREAD] does, only on the new
     * thread (named `corobridge-loop-<loop>-call-<n>`), which ends with the call; the caller's context carriers
     * are captured on the caller's thread, and an interrupt of the caller, or its timeout, cancels the call and
     * waits for it to finish cancelling, as everywhere else. A failure reaches the caller unchanged, with the
     * caller's frames attached. The price is a thread start per call: 130-210 us on a 2-core machine, about what
     * a hand-written thread running `runBlocking` costs (see docs/threading-model.md).
     *
     * @since 0.2
     */
    NEW_THREAD,
}
