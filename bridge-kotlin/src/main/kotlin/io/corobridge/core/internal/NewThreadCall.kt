package io.corobridge.core.internal

import io.corobridge.core.CalledFrom
import io.corobridge.core.RunSyncLoop

/*
 * RunOn.NEW_THREAD: the call runs as a RunOn.CALLER_THREAD call does, on a thread made for it, while the caller
 * waits for that thread to end. The call is made on the caller's thread (so the context carriers capture the
 * caller's values) with the new thread as its event loop's owner, and the new thread runs it with the caller's
 * deadline. The caller passes each interrupt on to the call's thread, where the call's own rules apply (the first
 * cancels the call and waits for its finally blocks; a second leaves a call that ignores cancellation behind),
 * and then waits, uninterruptibly, for that thread to end, which it does as soon as the call has answered. Then it
 * returns the value or rethrows the failure, with its own frames attached.
 */

private val newThreadCalls = java.util.concurrent.atomic.AtomicLong()

/** A blocking call of [body] on a new thread with its own event loop; see RunOn.NEW_THREAD. */
internal fun <T> RunSyncLoop.callOnNewThread(body: Any, timeoutNanos: Long): T {
    if (Thread.currentThread().isInterrupted) {
        throw java.util.concurrent.CancellationException(
            "the calling thread was interrupted before the call on loop \"$name\" started; it was not run"
        )
    }
    closing.checkOpen()
    val outcome = arrayOfNulls<Any>(2) // [0] the value, [1] the failure
    lateinit var call: CallerThreadCall<T>
    val runner = LibraryThreads.create {
        Thread(LibraryThreads.group, {
            try {
                outcome[0] = call.runHere(timeoutNanos)
            } catch (failure: Throwable) {
                outcome[1] = failure
            }
        }, "corobridge-loop-$name-call-${newThreadCalls.incrementAndGet()}").also { it.isDaemon = true }
    }
    call = CallerThreadCall(this, body, runner)
    counters.callsStarted.increment()
    var interrupted = false
    try {
        runner.start()
        while (true) {
            try {
                runner.join()
                break
            } catch (_: InterruptedException) {
                interrupted = true
                runner.interrupt()
            }
        }
    } finally {
        counters.callsEnded.increment()
        if (interrupted) Thread.currentThread().interrupt()
    }
    // Thread.join orders the runner's writes before these reads.
    val failure = outcome[1] as Throwable?
    if (failure != null) throw CalledFrom.attach(failure, name)
    @Suppress("UNCHECKED_CAST")
    return outcome[0] as T
}
