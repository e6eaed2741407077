package io.corobridge.core.internal

import io.corobridge.core.RunSyncLoop
import java.util.concurrent.atomic.AtomicIntegerFieldUpdater
import kotlinx.coroutines.AbstractCoroutine
import kotlinx.coroutines.CancellationException
import kotlinx.coroutines.InternalCoroutinesApi
import kotlinx.coroutines.Job
import kotlin.coroutines.ContinuationInterceptor
import kotlin.coroutines.CoroutineContext
import kotlin.coroutines.intrinsics.COROUTINE_SUSPENDED

/*
 * One call submitted to a loop. The record is at once the call's Job, the completion continuation its body
 * finishes into, the Runnable the loop runs to start it, and its own link in the loop's call queue: on the
 * blocking path it is, with its coroutine context, all that a call allocates.
 *
 * Its context is the loop's dispatcher, plus the values the caller's context carriers captured (see
 * CarriedContext) when any are registered.
 *
 * The body starts inside run(), on the loop thread, so its first line already runs there. It is invoked
 * directly with this record as its continuation: a body that returns a value completes the call at once; one
 * that returns COROUTINE_SUSPENDED completes it later through resumeWith, from whichever thread resumes it
 * (usually the loop, since every frame of the body is intercepted by the loop's dispatcher).
 *
 * A call is made reachable by closing (which cancels it, and releases its caller if the loop gives up) only when
 * that can matter, not for every call: a blocking call when its body suspends on the loop thread (SuspendedCalls)
 * or its caller stops spinning and parks (ParkedCalls), which cost no allocation; a future at once, as a child of
 * the loop's supervisor, since its caller may wait for long. A call that completes inside run() while its caller
 * spins never needs it. JobSupport allows the parent to be set once after construction and copes with the call
 * completing meanwhile; the ATTACHED flag makes sure it is set once.
 */
@OptIn(InternalCoroutinesApi::class)
internal abstract class LoopCall<T>(
    parentContext: CoroutineContext,
    protected val body: Any,
) : AbstractCoroutine<T>(parentContext, false, true), QueuedTask {

    /** A call on [loop]'s own thread. */
    constructor(loop: RunSyncLoop, body: Any) : this(CarriedContext.callContext(loop.callContext), body)

    /**
     * The loop this call belongs to, found through its dispatcher in the call's context rather than kept in a
     * field of its own: one field fewer keeps the record at 40 bytes, and a call at 64 bytes in all. (A call on
     * its caller's thread has a dispatcher of its own, a CallerEventLoop, which names the loop too.)
     */
    val loop: RunSyncLoop
        get() = (context[ContinuationInterceptor] as LoopDispatcher).loop

    /** The next task in the loop's queue (see [TaskQueue]). */
    override var nextInQueue: QueuedTask? = null

    /** ATTACHED, CANCELLED_BY_CALLER and ENDED bits, updated with [FLAGS]. */
    @Volatile
    @JvmField
    var flags: Int = 0

    final override fun run() {
        if (loop.isClosed && refusedOnceClosing()) {
            reject(loop.closing.closedException()) // still queued when the loop began to close: never started
            return
        }
        if (!isActive) {
            // Cancelled while queued: the body never starts.
            resumeWith(Result.failure(getCancellationException()))
            return
        }
        // The first step is started here, not dispatched, so kotlinx does not install the caller's context
        // for it as it does for every later step: do it by hand.
        val carried = context[CarriedContext]
        val tokens = carried?.install()
        val result = try {
            startBody()
        } catch (e: Throwable) {
            resumeWith(Result.failure(e))
            return
        } finally {
            if (carried != null) carried.restore(tokens)
        }
        if (result === COROUTINE_SUSPENDED) {
            if (flags and ATTACHED == 0) {
                if (registersWhenSuspended() && loop.isLoopThread()) loop.closing.registerSuspended(this) else attachToLoop()
            }
        } else {
            @Suppress("UNCHECKED_CAST")
            resumeWith(Result.success(result as T))
        }
    }

    /**
     * Runs the body's first step with this call as its continuation; returns its value, or COROUTINE_SUSPENDED
     * if it suspended (a subclass may also return that after completing the call itself).
     */
    protected open fun startBody(): Any? = CallBodies.start(body, this)

    /**
     * Makes the call reachable by closing, once; safe from any thread. A call becomes a child of its parent
     * job ([parentJob]); a call on its caller's thread joins a set of the loop's instead (see CallerThreadCall).
     */
    open fun attachToLoop() {
        if (!setFlag(ATTACHED)) return
        val parent = parentJob()
        initParentJob(parent)
        // A parent that is no longer active may have finished already (the loop began closing while this call
        // was starting); then the call is not among its children, and the loop must be told of it directly, or
        // releasing the callers at the end of close() would miss this one.
        if (!parent.isActive) loop.closing.keepUntilReleased(this)
    }

    /**
     * Whether a call that suspends on the loop thread is kept in the loop's list of suspended calls (see
     * SuspendedCalls) rather than made a child of [parentJob]: true for blocking calls, whose only parent is
     * the loop's supervisor and whom nothing else waits for.
     */
    protected open fun registersWhenSuspended(): Boolean = false

    /** The job this call becomes a child of: the loop's supervisor, which closing the loop cancels at once. */
    protected open fun parentJob(): Job = loop.supervisorJob

    /**
     * Whether a call still queued when the loop begins to close is refused rather than started: true for
     * calls, whose callers are released at once; background tasks, accepted before the close, still run.
     */
    protected open fun refusedOnceClosing(): Boolean = true

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
        setFlag(CANCELLED_BY_CALLER)
        cancel(CancellationException(message))
    }

    /** Sets [flag]; true if this call set it (it was clear). */
    fun setFlag(flag: Int): Boolean {
        while (true) {
            val current = flags
            if (current and flag != 0) return false
            if (FLAGS.compareAndSet(this, current, current or flag)) return true
        }
    }

    /**
     * The exception a caller sees for a coroutine that ended with [cause]: the cause itself, except that a
     * cancellation caused by the loop closing (or its thread dying) says so.
     */
    protected fun callerFailure(cause: Throwable): Throwable {
        if (cause !is CancellationException || flags and CANCELLED_BY_CALLER != 0 || !loop.isClosed) return cause
        val death = loop.closing.deathCause
        if (death != null) {
            return IllegalStateException("loop thread \"corobridge-loop-${loop.name}\" died before the call finished", death)
        }
        return CancellationException("the call was cancelled because loop \"${loop.name}\" closed").also {
            it.initCause(cause)
        }
    }

    internal companion object {
        const val ATTACHED = 1
        const val CANCELLED_BY_CALLER = 2

        /** A future call's future has completed (counted once in the loop's statistics). */
        const val ENDED = 4

        private val FLAGS: AtomicIntegerFieldUpdater<LoopCall<*>> =
            AtomicIntegerFieldUpdater.newUpdater(LoopCall::class.java, "flags")
    }
}
