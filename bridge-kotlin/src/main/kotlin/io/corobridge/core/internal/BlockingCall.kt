package io.corobridge.core.internal

import io.corobridge.core.CalledFrom
import io.corobridge.core.RunSyncLoop
import java.util.concurrent.TimeoutException
import java.util.concurrent.atomic.AtomicReferenceFieldUpdater
import java.util.concurrent.locks.LockSupport
import kotlin.coroutines.CoroutineContext
import kotlin.coroutines.cancellation.CancellationException

/*
 * A call whose caller waits until it ends. Its one `outcome` slot says everything the two sides need:
 *
 *   PENDING      nothing yet, and the caller is not parked (it is spinning, or has not started waiting);
 *   a Thread     nothing yet, and that thread, the caller, is parked or about to park: unpark it;
 *   a Failure    the call failed, or was aborted because the loop cannot finish it;
 *   a Boxed      the call returned a value that would be mistaken for one of the above (a Thread);
 *   anything     the call's value.
 *
 * The outcome is published once, by CAS from PENDING or from the parked caller's Thread, by whichever comes
 * first: the coroutine completing or an abort. Only the caller ever stores a Thread, and it does so by CAS
 * from PENDING right before parking; so the publisher unparks exactly the callers that park, and a caller
 * that got its answer while spinning costs the loop no unpark. Keeping the waiter in the outcome slot, rather
 * than in a field and a flag of its own, keeps the record at 40 bytes.
 *
 * When the caller gives up (interrupt, deadline) it cancels the coroutine and keeps waiting for it to end,
 * so that its finally blocks have run before the caller returns: no work outlives the call that started it.
 * Only a call that ignores cancellation can hold the caller there; a further interrupt releases the caller.
 */
internal open class BlockingCall<T> : LoopCall<T> {
    /** A call that runs on [loop]'s thread while its caller waits. */
    constructor(loop: RunSyncLoop, body: Any) : super(loop, body)

    /** A call with a dispatcher of its own in [parentContext] (see CallerThreadCall). */
    protected constructor(parentContext: CoroutineContext, body: Any) : super(parentContext, body)

    @Volatile
    @JvmField
    internal var outcome: Any? = PENDING

    override fun onCompleted(value: T) {
        publish(if (value is Thread) Boxed(value) else value)
        leaveSuspendedCalls()
    }

    override fun onCancelled(cause: Throwable, handled: Boolean) {
        publish(Failure(cause))
        leaveSuspendedCalls()
    }

    /**
     * Ending on a loop thread, empties this call's slot among that loop's suspended calls if it is the one added
     * last (see SuspendedCalls.removeIfLast). A call that never suspended, or ends elsewhere, costs a type check.
     */
    private fun leaveSuspendedCalls() {
        val thread = Thread.currentThread()
        if (thread is LoopThread) thread.loop.closing.suspendedCalls.removeIfLast(this)
    }

    override fun registersWhenSuspended(): Boolean = true

    override fun abort(reason: Throwable) {
        publish(Failure(reason))
    }

    private fun publish(result: Any?) {
        while (true) {
            val current = outcome
            if (current !== PENDING && current !is Thread) return // published already: the first one wins
            if (OUTCOME.compareAndSet(this, current, result)) {
                // A caller that runs its call itself (CallerThreadCall) may publish the outcome it waits for:
                // it is not parked, and a permit left for it would wake some later park of its for nothing.
                if (current is Thread && current !== Thread.currentThread()) LockSupport.unpark(current)
                return
            }
        }
    }

    /** True while the call has no outcome; the caller may be registered as parked. */
    protected fun isPending(): Boolean {
        val current = outcome
        return current === PENDING || current is Thread
    }

    /**
     * Makes sure closing the loop reaches this call before the caller parks, then announces the parking. Returns
     * the call's slot among the loop's parked calls, to empty once the wait is over, or -1 if it has none (see
     * ClosingProtocol.registerParked).
     */
    private fun prepareToPark(): Int {
        val slot = loop.closing.registerParked(this)
        // Fails only if the outcome arrived meanwhile: then there is nothing to park for.
        OUTCOME.compareAndSet(this, PENDING, Thread.currentThread())
        return slot
    }

    /** Ends the wait: empties the call's slot among the parked calls, if it has one, and runs [afterWaiting]. */
    private fun stopWaiting(slot: Int) {
        if (slot >= 0) loop.closing.parkedCalls.remove(slot)
        afterWaiting()
    }

    /**
     * Parks the calling thread until the call ends and returns its result or throws its failure.
     * [timeoutNanos] of 0 means no deadline.
     */
    fun await(timeoutNanos: Long): T {
        val deadline = if (timeoutNanos > 0) System.nanoTime() + timeoutNanos else 0L
        beforeWaiting()
        val slot = if (outcome === PENDING) prepareToPark() else -1
        var interruptSeen = false
        var gaveUp = NOT_GIVEN_UP
        while (isPending()) {
            if (gaveUp == NOT_GIVEN_UP && deadline != 0L) {
                val left = deadline - System.nanoTime()
                if (left <= 0L) {
                    gaveUp = TIMED_OUT
                    cancelAsCaller("the caller's timeout of ${describeNanos(timeoutNanos)} elapsed")
                    continue
                }
                waitOnce(left)
            } else {
                waitOnce(0L)
            }
            if (Thread.interrupted()) {
                interruptSeen = true
                if (gaveUp == NOT_GIVEN_UP) {
                    gaveUp = INTERRUPTED
                    cancelAsCaller("the calling thread \"${Thread.currentThread().name}\" was interrupted")
                } else {
                    // Interrupted again while waiting for a cancelled call that does not finish (it ignores
                    // cancellation): stop waiting rather than hang, and say that the call was left behind.
                    stopWaiting(slot)
                    Thread.currentThread().interrupt()
                    throw java.util.concurrent.CancellationException(
                        "interrupted again while waiting for a cancelled call on loop \"${loop.name}\" to finish; " +
                            "the call ignores cancellation and was left running"
                    )
                }
            }
        }
        stopWaiting(slot)
        if (interruptSeen) Thread.currentThread().interrupt()

        val result = outcome
        if (result !is Failure) {
            @Suppress("UNCHECKED_CAST")
            return (if (result is Boxed) result.value else result) as T
        }
        val cause = result.cause
        if (cause is CancellationException) {
            when (gaveUp) {
                INTERRUPTED -> throw interruptedException(loop.name)
                TIMED_OUT -> throw TimeoutException(
                    "the call on loop \"${loop.name}\" did not complete within ${describeNanos(timeoutNanos)}; " +
                        "it was cancelled"
                )
            }
        }
        throw CalledFrom.attach(callerFailure(cause), loop.name)
    }

    /** Before the caller starts waiting: it spins briefly for an answer that comes at once. */
    protected open fun beforeWaiting() {
        Spinning.spinUntil(loop) { outcome !== PENDING }
    }

    /**
     * One turn of the caller's wait, once it is registered as parked: parks for at most [nanos] (0: no limit).
     * It may return early for any reason; the caller checks its outcome, deadline and interrupt after each turn.
     */
    protected open fun waitOnce(nanos: Long) {
        if (nanos > 0L) LockSupport.parkNanos(this, nanos) else LockSupport.park(this)
    }

    /**
     * When the caller stops waiting: the call has an outcome, or it was cancelled and ignores that, and the
     * caller leaves it behind.
     */
    protected open fun afterWaiting() {}

    private class Failure(@JvmField val cause: Throwable)

    /** A value that, stored as it is, would read as a parked caller. */
    private class Boxed(@JvmField val value: Any?)

    internal companion object {
        private val PENDING = Any()
        private const val NOT_GIVEN_UP = 0
        private const val INTERRUPTED = 1
        private const val TIMED_OUT = 2

        private val OUTCOME: AtomicReferenceFieldUpdater<BlockingCall<*>, Any?> =
            AtomicReferenceFieldUpdater.newUpdater(BlockingCall::class.java, Any::class.java, "outcome")

        /** The exception a caller gets when it is interrupted while waiting. */
        fun interruptedException(loopName: String): java.util.concurrent.CancellationException =
            java.util.concurrent.CancellationException(
                "interrupted while waiting for a call on loop \"$loopName\"; the call was cancelled"
            )
    }
}

internal fun describeNanos(nanos: Long): String = java.time.Duration.ofNanos(nanos).toString()

/** This duration in nanoseconds, or [overflow] when that does not fit in a Long (about 292 years). */
internal fun java.time.Duration.nanosOr(overflow: Long): Long = try {
    toNanos()
} catch (_: ArithmeticException) {
    overflow
}
