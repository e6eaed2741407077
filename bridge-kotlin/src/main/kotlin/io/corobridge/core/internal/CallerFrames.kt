package io.corobridge.core.internal

/**
 * Attached as a suppressed exception to a failure that crosses from the loop to a waiting caller, so the
 * stack trace shows the caller's side of the hop as well as the loop's. Created on the caller's thread,
 * which is what gives it the caller's frames.
 */
internal class CallerFrames(loopName: String, callerThread: Thread) :
    RuntimeException("called from thread \"${callerThread.name}\" through loop \"$loopName\"") {

    internal companion object {
        /** Returns [failure] with the current thread's frames attached. */
        fun attach(failure: Throwable, loopName: String): Throwable {
            failure.addSuppressed(CallerFrames(loopName, Thread.currentThread()))
            return failure
        }
    }
}
