package io.corobridge.core.internal

import io.corobridge.core.ContinuationCall
import io.corobridge.core.RunSyncLoop
import kotlinx.coroutines.AbstractCoroutine
import kotlinx.coroutines.CancellationException
import kotlinx.coroutines.InternalCoroutinesApi
import kotlin.coroutines.intrinsics.COROUTINE_SUSPENDED
import kotlin.coroutines.intrinsics.startCoroutineUninterceptedOrReturn

/*
 * One call submitted to a loop. The record is at once the call's Job (a child of the loop's supervisor, so
 * closing the loop cancels it), the completion continuation its body finishes into, and the Runnable the
 * loop runs to start it. Subclasses decide how the outcome reaches the caller.
 *
 * The body starts inside run(), on the loop thread, so its first line already runs there. It is invoked
 * directly with this record as its continuation: a body that returns a value completes the call at once; one
 * that returns COROUTINE_SUSPENDED completes it later through resumeWith, from whichever thread resumes it
 * (usually the loop, since every frame of the body is intercepted by the loop's dispatcher).
 */
@OptIn(InternalCoroutinesApi::class)
internal abstract class LoopCall<T>(
    @JvmField val loop: RunSyncLoop,
    private val body: Any,
) : AbstractCoroutine<T>(loop.callContext, true, true), Runnable {

    /** Set when the caller (not the loop closing) asked for cancellation: an interrupt, a timeout, a cancel. */
    @Volatile
    @JvmField
    var cancelledByCaller: Boolean = false

    final override fun run() {
        if (!isActive) {
            // Cancelled while queued: the body never starts.
            resumeWith(Result.failure(getCancellationException()))
            return
        }
        val result = try {
            @Suppress("UNCHECKED_CAST")
            if (body is ContinuationCall<*>) {
                (body as ContinuationCall<T>).invoke(this)
            } else {
                (body as suspend () -> T).startCoroutineUninterceptedOrReturn(this)
            }
        } catch (e: Throwable) {
            resumeWith(Result.failure(e))
            return
        }
        if (result !== COROUTINE_SUSPENDED) {
            @Suppress("UNCHECKED_CAST")
            resumeWith(Result.success(result as T))
        }
    }

    /** Completes a call that never started, with [failure]; it goes through the normal completion path. */
    fun reject(failure: Throwable) {
        resumeWith(Result.failure(failure))
    }

    /**
     * Releases the caller with [reason] although the coroutine has not finished (the loop is gone or stuck).
     * The coroutine itself is left as it is: nothing can run it any more.
     */
    abstract fun abort(reason: Throwable)

    /** Cancels the call on the caller's behalf. */
    fun cancelAsCaller(message: String) {
        cancelledByCaller = true
        cancel(CancellationException(message))
    }

    /**
     * The exception a caller sees for a coroutine that ended with [cause]: the cause itself, except that a
     * cancellation caused by the loop closing says so.
     */
    protected fun callerFailure(cause: Throwable): Throwable {
        if (cause !is CancellationException || cancelledByCaller || !loop.isClosed) return cause
        val death = loop.deathCause
        if (death != null) {
            return IllegalStateException("loop thread \"corobridge-loop-${loop.name}\" died before the call finished", death)
        }
        return CancellationException("the call was cancelled because loop \"${loop.name}\" closed").also {
            it.initCause(cause)
        }
    }
}
