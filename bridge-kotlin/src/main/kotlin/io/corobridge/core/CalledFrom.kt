package io.corobridge.core

/**
 * The caller's side of a blocking call, attached as a suppressed exception to the failure that a blocking call
 * rethrows: its stack trace is the calling thread's, so one trace shows both sides of the hop, the loop's (the
 * failure's own frames) and the caller's (these), as in
 * `Suppressed: io.corobridge.core.CalledFrom: thread "main" through loop "default"`.
 *
 * Made by corobridge on the calling thread as the failure reaches it; find it with
 * `failure.suppressed.filterIsInstance<CalledFrom>()`. Never thrown on its own.
 *
 * @since 0.2
 */
public class CalledFrom internal constructor(
    /** The name of the thread that made the call. */
    public val threadName: String,
    /** The name of the loop the call ran on. */
    public val loopName: String,
) : RuntimeException("thread \"$threadName\" through loop \"$loopName\"") {

    internal companion object {
        /** Returns [failure] with the current thread's frames attached. */
        fun attach(failure: Throwable, loopName: String): Throwable {
            failure.addSuppressed(CalledFrom(Thread.currentThread().name, loopName))
            return failure
        }
    }
}
