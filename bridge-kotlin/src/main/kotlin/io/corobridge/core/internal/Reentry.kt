package io.corobridge.core.internal

import io.corobridge.core.ReentryPolicy
import io.corobridge.core.RunSyncLoop

/*
 * A blocking call made on a loop thread, where waiting would deadlock (the loop cannot run the call while its
 * own thread waits for it): Prefect's "called from the event loop" case. The loop's ReentryPolicy decides: FAIL
 * throws at once; NEW_THREAD (the default) runs the call on a new loop of its own, made for this call and closed
 * after it, and warns once per call site. That helper loop names the loop it was made for (reentryParent), so
 * closing the parent from inside the call does not wait for itself.
 */

private val logger: System.Logger = System.getLogger(RunSyncLoop::class.java.name)

/** A blocking call of [body] made on a loop thread; [warn] is false when the caller has warned already. */
internal fun <T> RunSyncLoop.reenter(body: Any, timeoutNanos: Long, warn: Boolean = true): T {
    closing.checkOpen() // a closing loop refuses the call whichever thread it would run on (a shutdown callback's, say)
    admitReentry(
        "a blocking call into loop \"$name\"",
        "From coroutine code call the suspend function directly; from Java use the future-returning " +
            "form (Bridge.async) and add a dependent stage instead of waiting.",
        warn,
    )
    val helper = reentryHelper()
    try {
        return helper.callHere(body, timeoutNanos)
    } finally {
        helper.closing.shutdown(RunSyncLoop.DEFAULT_GRACE_NANOS)
    }
}

/**
 * Applies the re-entry policy to [what], which is about to make this loop thread wait for work it would have
 * to run itself: throws [IllegalStateException] under FAIL; under NEW_THREAD returns, having warned once per
 * call site unless [warn] is false. [advice] says what to do instead.
 */
internal fun RunSyncLoop.admitReentry(what: String, advice: String, warn: Boolean = true) {
    val site = CallSites.current()
    val problem = "$what was made on loop thread \"${Thread.currentThread().name}\" at $site"
    when (reentryPolicy) {
        ReentryPolicy.FAIL -> throw IllegalStateException(
            "$problem; waiting there would deadlock, because a loop cannot run a call while its own thread " +
                "waits for it. $advice (Set reentryPolicy = NEW_THREAD to run such calls on a new thread.)"
        )
        ReentryPolicy.NEW_THREAD -> if (warn && CallSites.firstTime(site)) {
            logger.log(
                System.Logger.Level.WARNING,
                "$problem; it runs on a new thread with its own event loop instead of deadlocking. " +
                    "$advice This warning is given once per call site."
            )
        }
    }
}

/** A loop made to run work re-entered from a loop thread of this one; whoever makes it closes it. */
internal fun RunSyncLoop.reentryHelper(): RunSyncLoop {
    val helper = RunSyncLoop("$name-reentry-${reentries.incrementAndGet()}", isDefault = false)
    helper.failureHandler = failureHandler
    helper.reentryParent = this
    return helper
}

/**
 * RunSyncLoop.runSync for asyncDispatch, which has warned about the call site already: on a loop thread the
 * re-entry policy applies without a warning of its own.
 */
internal fun <T> RunSyncLoop.runSyncWarned(block: suspend () -> T): T =
    if (Thread.currentThread() is LoopThread) reenter(block, NO_TIMEOUT, warn = false) else callBlocking(block, NO_TIMEOUT)
