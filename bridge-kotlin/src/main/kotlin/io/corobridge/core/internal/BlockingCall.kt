package io.corobridge.core.internal

import io.corobridge.core.RunSyncLoop
import java.util.concurrent.TimeoutException
import java.util.concurrent.atomic.AtomicReferenceFieldUpdater
import java.util.concurrent.locks.LockSupport
import kotlin.coroutines.cancellation.CancellationException

/*
 * A call whose caller waits until it ends. The outcome is published once (CAS from PENDING) by whichever
 * comes first: the coroutine completing, or an abort when the loop cannot finish it. The caller reads it
 * after seeing it is no longer PENDING; the volatile write/read pair makes the value visible.
 *
 * The caller first spins for the outcome (see Spinning), and only then parks. Before parking it sets PARKED,
 * and the publisher unparks it only if it sees PARKED: a caller that got its answer while spinning costs the
 * loop no unpark. Publisher (outcome, then flags) and caller (flags, then outcome) use volatile accesses, so
 * at least one of them sees the other's write and the caller is never left parked.
 *
 * When the caller gives up (interrupt, deadline) it cancels the coroutine and keeps waiting for it to end,
 * so that its finally blocks have run before the caller returns: no work outlives the call that started it.
 * Only a call that ignores cancellation can hold the caller there; a further interrupt releases the caller.
 */
internal class BlockingCall<T>(loop: RunSyncLoop, body: Any) : LoopCall<T>(loop, body) {
    private val waiter: Thread = Thread.currentThread()

    @Volatile
    @JvmField
    internal var outcome: Any? = PENDING

    override fun onCompleted(value: T) {
        publish(value)
    }

    override fun onCancelled(cause: Throwable, handled: Boolean) {
        publish(Failure(cause))
    }

    override fun abort(reason: Throwable) {
        publish(Failure(reason))
    }

    private fun publish(result: Any?) {
        if (OUTCOME.compareAndSet(this, PENDING, result) && flags and PARKED != 0) {
            LockSupport.unpark(waiter)
        }
    }

    /** Makes sure closing the loop reaches this call before the caller parks, then announces the parking. */
    private fun prepareToPark() {
        attachToLoop()
        // The loop may have released its callers just before this call attached; then release ourselves.
        loop.releaseReason()?.let(::abort)
        setFlag(PARKED)
    }

    /**
     * Parks the calling thread until the call ends and returns its result or throws its failure.
     * [timeoutNanos] of 0 means no deadline.
     */
    fun await(timeoutNanos: Long): T {
        val deadline = if (timeoutNanos > 0) System.nanoTime() + timeoutNanos else 0L
        Spinning.spinUntil(loop) { outcome !== PENDING }
        if (outcome === PENDING) prepareToPark()
        var interruptSeen = false
        var gaveUp = NOT_GIVEN_UP
        while (outcome === PENDING) {
            if (gaveUp == NOT_GIVEN_UP && deadline != 0L) {
                val left = deadline - System.nanoTime()
                if (left <= 0L) {
                    gaveUp = TIMED_OUT
                    cancelAsCaller("the caller's timeout of ${describeNanos(timeoutNanos)} elapsed")
                    continue
                }
                LockSupport.parkNanos(this, left)
            } else {
                LockSupport.park(this)
            }
            if (Thread.interrupted()) {
                interruptSeen = true
                if (gaveUp == NOT_GIVEN_UP) {
                    gaveUp = INTERRUPTED
                    cancelAsCaller("the calling thread \"${waiter.name}\" was interrupted")
                } else {
                    // Interrupted again while waiting for a cancelled call that does not finish (it ignores
                    // cancellation): stop waiting rather than hang, and say that the call was left behind.
                    waiter.interrupt()
                    throw java.util.concurrent.CancellationException(
                        "interrupted again while waiting for a cancelled call on loop \"${loop.name}\" to finish; " +
                            "the call ignores cancellation and was left running"
                    )
                }
            }
        }
        if (interruptSeen) waiter.interrupt()

        val result = outcome
        if (result !is Failure) {
            @Suppress("UNCHECKED_CAST")
            return result as T
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
        throw CallerFrames.attach(callerFailure(cause), loop.name)
    }

    private class Failure(@JvmField val cause: Throwable)

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
