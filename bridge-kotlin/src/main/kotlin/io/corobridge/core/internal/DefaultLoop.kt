package io.corobridge.core.internal

import io.corobridge.core.RunSyncLoop
import io.corobridge.core.launch
import io.corobridge.core.onShutdown

private val logger: System.Logger = System.getLogger(RunSyncLoop::class.java.name)

/** Holds the default loop, created on first use (class initialisation makes that thread-safe and once). */
internal object DefaultLoop {
    /** Classes a close needs only when something fails, which a rehearsal does not make happen. */
    private val FAILURE_PATH_CLASSES = listOf(
        "io.corobridge.core.internal.SafeLogKt",
        "io.corobridge.core.internal.FailureReportsKt",
        "kotlinx.coroutines.CoroutinesInternalError",
        "kotlinx.coroutines.CoroutineExceptionHandlerKt",
        "kotlinx.coroutines.CompletionHandlerException",
        "kotlinx.coroutines.TimeoutCancellationException",
    )

    /** The settings given from outside the code (see DefaultSettings), or why they cannot be used. */
    private val settings: Result<DefaultSettings> = runCatching { DefaultSettings.fromSystem() }

    /** The default loop, or why its settings cannot be used (then every use says why, see [get]). */
    private val loop: Result<RunSyncLoop> = settings.mapCatching { given ->
        RunSyncLoop("default", isDefault = true).also { loop ->
            given.applyTo(loop)
            rehearseClosing()
            val graceNanos = given.closeGrace?.nanosOr(Long.MAX_VALUE / 4) ?: RunSyncLoop.DEFAULT_GRACE_NANOS
            try {
                Runtime.getRuntime().addShutdownHook(
                    LibraryThreads.create {
                        Thread(LibraryThreads.group, { closeAtExit(loop, graceNanos) }, "corobridge-shutdown-default")
                    }
                )
            } catch (_: IllegalStateException) {
                // The JVM is already shutting down: no hook can be added, and the daemon loop thread dies
                // with the JVM. Nothing is lost that a hook could have saved.
            }
        }
    }

    /**
     * The default loop.
     *
     * @throws IllegalStateException if a setting given from outside the code cannot be used (the cause names it)
     */
    fun get(): RunSyncLoop = loop.getOrElse { why ->
        val advice = KotlinRuntime.explain(why)?.let { "; $it" } ?: ""
        throw IllegalStateException("the default loop cannot start: ${why.message ?: why}$advice", why)
    }

    /*
     * The shutdown hook may run after the class loader that loaded corobridge has been closed: `mvn exec:java`
     * closes the program's loader when main returns, a container closes an application's when it undeploys
     * it. From then on no class can be loaded, and a close that needs one it has not used yet fails with
     * NoClassDefFoundError. Then the hook says so in one line and the JVM exits (the loop thread is a daemon).
     */
    /**
     * Loads what closing needs while loading still works: runs the closing protocol twice on throwaway
     * loops (one with a call in flight, a background task and a callback, closed with a grace that runs
     * out; one with only a callback, closed with the default grace), and loads the failure paths' classes.
     */
    private fun rehearseClosing() {
        try {
            val loader = RunSyncLoop::class.java.classLoader
            for (name in FAILURE_PATH_CLASSES) Class.forName(name, true, loader)
            val busy = RunSyncLoop("default-rehearsal", isDefault = false)
            busy.closing.isRehearsal = true
            busy.onShutdown { }
            busy.launch { kotlinx.coroutines.awaitCancellation() }
            val inFlight = busy.runAsync<Unit> { kotlinx.coroutines.awaitCancellation() }
            busy.runAsync { }.join()
            busy.closing.shutdown(1L)
            check(inFlight.isCompletedExceptionally) { "the rehearsal's call outlived its close" }
            val quiet = RunSyncLoop("default-rehearsal", isDefault = false)
            quiet.closing.isRehearsal = true
            quiet.onShutdown { }
            quiet.runAsync { kotlinx.coroutines.yield() }.join()
            quiet.closing.shutdown(RunSyncLoop.DEFAULT_GRACE_NANOS)
        } catch (e: Exception) {
            logger.logFailure(
                System.Logger.Level.WARNING,
                "could not rehearse closing the default loop; closing it at JVM exit may fail if the " +
                    "application's class loader is closed by then",
                e,
            )
        }
    }

    private fun closeAtExit(loop: RunSyncLoop, graceNanos: Long) {
        try {
            loop.closing.shutdown(graceNanos)
        } catch (missing: LinkageError) {
            // Standard error, not the logger: the logger's classes may be the ones that cannot be loaded.
            System.err.println(
                "corobridge: the default loop could not finish closing at JVM exit: a class it needed could " +
                    "not be loaded ($missing); the application's class loader was closed before the JVM's " +
                    "shutdown hooks ran"
            )
        }
    }
}
