package io.corobridge.core

import java.util.concurrent.locks.ReentrantLock
import kotlin.concurrent.withLock

/**
 * Callbacks that run exactly once when their loop closes, in reverse order of registration, after the
 * background tasks have ended (they release what those tasks were using). One that throws is reported to the
 * loop's failure handler and the others still run. Prefect: `add_event_loop_shutdown_callback`.
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
        get() = lock.withLock { callbacks.isEmpty() }

    /** Runs every callback once, newest first, on the calling (loop) thread. */
    suspend fun runAll() {
        val all = lock.withLock {
            taken = true
            ArrayList(callbacks).also { callbacks.clear() }
        }
        for (callback in all.asReversed()) {
            try {
                @Suppress("UNCHECKED_CAST")
                if (callback is Runnable) callback.run() else (callback as suspend () -> Unit)()
            } catch (failure: Throwable) {
                loop.reportFailure(failure)
            }
        }
    }
}
