package io.corobridge.core.internal

import io.corobridge.core.CalledFrom
import io.corobridge.core.RunSyncLoop
import java.util.concurrent.CountDownLatch

/*
 * RunOn.NEW_THREAD: the call runs as a RunOn.CALLER_THREAD call does, on a thread made for it, while the caller
 * waits for that thread to end. The call is made on the caller's thread (so the context carriers capture the
 * caller's values) with the new thread as its event loop's owner, and the new thread runs it with the caller's
 * deadline. The caller waits on a latch the call's thread opens when the call has answered, passing each interrupt
 * on to that thread, where the call's own rules apply (the first cancels the call and waits for its finally
 * blocks; a second leaves a call that ignores cancellation behind); then it waits the moment the thread takes to
 * end, and returns the value or rethrows the failure, with its own frames attached.
 */

private val newThreadCalls = java.util.concurrent.atomic.AtomicLong()

/** A blocking call of [body] on a new thread with its own event loop; see RunOn.NEW_THREAD. */
internal fun <T> RunSyncLoop.callOnNewThread(body: Any, timeoutNanos: Long): T = countedBlockingCall {
    val outcome = arrayOfNulls<Any>(2) // [0] the value, [1] the failure
    val answered = CountDownLatch(1)
    lateinit var call: CallerThreadCall<T>
    val runner = LibraryThreads.create {
        Thread(LibraryThreads.group, {
            try {
                outcome[0] = call.runHere(timeoutNanos)
            } catch (failure: Throwable) {
                outcome[1] = failure
            } finally {
                answered.countDown()
            }
        }, "corobridge-loop-$name-call-${newThreadCalls.incrementAndGet()}").also { it.isDaemon = true }
    }
    call = CallerThreadCall(this, body, runner)
    var interrupted = false
    try {
        runner.start()
        // A latch, not Thread.join, for the wait that lasts as long as the call: join waits in a monitor, which
        // pins a virtual thread's carrier on JDK 21.
        while (true) {
            try {
                answered.await()
                break
            } catch (_: InterruptedException) {
                interrupted = true
                runner.interrupt()
            }
        }
        // The call has answered; its thread is ending. Wait the moment that takes, so no thread outlives the call.
        while (runner.isAlive) {
            try {
                runner.join()
            } catch (_: InterruptedException) {
                interrupted = true
            }
        }
    } finally {
        if (interrupted) Thread.currentThread().interrupt()
    }
    // The latch orders the runner's writes before these reads.
    val failure = outcome[1] as Throwable?
    if (failure != null) throw CalledFrom.attach(failure, name)
    @Suppress("UNCHECKED_CAST")
    outcome[0] as T
}
