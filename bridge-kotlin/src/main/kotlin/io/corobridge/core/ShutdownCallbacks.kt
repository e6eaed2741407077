package io.corobridge.core

import io.corobridge.core.internal.CallBodies
import io.corobridge.core.internal.reportFailure
import java.util.concurrent.locks.ReentrantLock
import kotlin.concurrent.withLock

/**
 * Callbacks that run exactly once when their loop closes, in reverse order of registration, after the
 * background tasks have ended (they release what those tasks were using). One that throws is reported to the
 * loop's failure handler and the others still run. Prefect: `add_event_loop_shutdown_callback`.
 *
 * They run on the loop thread; the ones it cannot run (it is stuck in blocking code, or one callback has not
 * finished within the callbacks' budget) run on the thread that ends the close.
 *
 * A lock (not `synchronized`, so virtual threads never pin) orders registration against the closing loop
 * taking the callbacks: a callback is either registered in time to run, or refused.
 */
internal class ShutdownCallbacks(private val loop: RunSyncLoop) {
    private val lock = ReentrantLock()
    private val callbacks = ArrayList<Any>()
    private var taken = false

    /** Registers a suspend lambda or a [Runnable]. */
    fun add(callback: Any) {
        lock.withLock {
            check(!taken && !loop.isClosed) {
                "loop \"${loop.name}\" is closed; shutdown callbacks can no longer be registered"
            }
            callbacks.add(callback)
        }
    }

    val isEmpty: Boolean
        get() = left == 0

    /** The callback running now (for reports of one that does not finish), or null. */
    @Volatile
    var running: Any? = null
        private set

    /**
     * Runs every callback not yet taken, newest first, on the calling thread. Each is taken under the lock
     * before it runs, so callbacks run exactly once even when a second thread (the closing thread, when the
     * loop thread is stuck) runs the rest while the first is still inside one.
     */
    suspend fun runAll() {
        while (true) {
            val callback = lock.withLock {
                taken = true
                callbacks.removeLastOrNull()
            } ?: return
            running = callback
            try {
                CallBodies.run<Any?>(callback)
            } catch (failure: Throwable) {
                loop.reportFailure(failure)
            } finally {
                running = null
            }
        }
    }

    /** How many callbacks have not been taken yet. */
    val left: Int
        get() = lock.withLock { callbacks.size }
}

// ---- Entry points: shutdown callbacks of a loop ----

/**
 * Registers [callback] to run exactly once when the loop closes, by [RunSyncLoop.close] or at JVM exit for the
 * default loop: on the loop thread, after the background tasks have ended, in reverse order of
 * registration. One that throws is reported to [RunSyncLoop.failureHandler] and the others still run.
 *
 * @throws IllegalStateException if the loop is closed
 * @since 0.1
 */
@JvmSynthetic
public fun RunSyncLoop.onShutdown(callback: suspend () -> Unit) {
    shutdownCallbacks.add(callback)
}

// ---- Java-shaped form (a SuspendCall, Runnable or Callable, as Java writes them) ----
/**
 * [onShutdown] for a plain [Runnable], as Java writes it.
 *
 * @since 0.1
 */
public fun RunSyncLoop.onShutdown(callback: Runnable) {
    shutdownCallbacks.add(callback)
}
