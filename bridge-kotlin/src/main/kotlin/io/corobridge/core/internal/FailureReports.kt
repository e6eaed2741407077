package io.corobridge.core.internal

import io.corobridge.core.RunSyncLoop

private val logger: System.Logger = System.getLogger(RunSyncLoop::class.java.name)

/**
 * Reports a failure that escaped onto the loop thread, or a background task's or callback's: to the loop's
 * failureHandler, or, without one, through System.Logger at ERROR. Never throws but fatal errors: a handler
 * that throws is logged, and only a VirtualMachineError goes on (and ends the loop thread, see LoopThread).
 */
internal fun RunSyncLoop.reportFailure(failure: Throwable) {
    val handler = failureHandler
    if (handler == null) {
        try {
            logger.logFailure(System.Logger.Level.ERROR, "uncaught failure on loop \"$name\"", failure)
        } catch (missing: LinkageError) {
            // The logging code cannot be loaded any more (the class loader was closed): standard error is left.
            System.err.println("corobridge: uncaught failure on loop \"$name\"")
            failure.printStackTrace()
        }
        return
    }
    try {
        handler.uncaughtException(thread, failure)
    } catch (fatal: VirtualMachineError) {
        if (fatal !== failure) fatal.addSuppressed(failure)
        throw fatal
    } catch (broken: Throwable) {
        if (broken !== failure) broken.addSuppressed(failure)
        logger.logFailure(System.Logger.Level.ERROR, "the failure handler of loop \"$name\" threw", broken)
    }
}
