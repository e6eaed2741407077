package io.corobridge.core.leak

import io.corobridge.core.RunSyncLoop
import io.corobridge.core.runInWorkerThread

/**
 * An "application" for ClassLoaderLeakTest: loaded by a class loader of its own, over a corobridge loaded by a
 * shared parent loader, as a container deploys a web application over a shared library.
 */
class LoaderApp {
    /** Starts a loop from this application's code and uses its loop thread, a worker and the watchdog. */
    fun start(name: String): AutoCloseable {
        val loop = RunSyncLoop.create(name)
        loop.runSync { loop.runInWorkerThread { Thread.currentThread().name } }
        return loop
    }
}
