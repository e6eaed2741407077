package io.corobridge.core.internal

import io.corobridge.core.RunSyncLoop
import java.util.concurrent.atomic.AtomicBoolean

/**
 * corobridge is built and tested with kotlin-stdlib 2.4. An older one on the class path (Maven keeps the nearest
 * version, and another dependency may bring one) may work, or may fail later with a NoClassDefFoundError or
 * NoSuchMethodError that names only a class of the standard library: 1.4.10 fails at the default loop's start,
 * 2.3.21 runs the tests' probe. So an older one gets a warning, once, and such a failure says what to do. This
 * uses nothing newer than KotlinVersion (1.1), so it runs on the oldest stdlib too.
 */
internal object KotlinRuntime {
    private const val MAJOR = 2
    private const val MINOR = 4
    private val warned = AtomicBoolean()

    private val older: Boolean
        get() = KotlinVersion.CURRENT.let { it.major < MAJOR || (it.major == MAJOR && it.minor < MINOR) }

    private fun advice(): String =
        "corobridge is built and tested with kotlin-stdlib " + MAJOR + "." + MINOR + ", and this class path has " +
            KotlinVersion.CURRENT + " (another dependency brought it, and Maven kept the nearest version): import " +
            "io.corobridge:corobridge-bom, or pin org.jetbrains.kotlin:kotlin-stdlib, in dependencyManagement"

    /** Logs a WARNING, once per process, if the kotlin-stdlib on the class path is older than corobridge's. */
    fun warnIfOlder() {
        if (older && warned.compareAndSet(false, true)) {
            System.getLogger(RunSyncLoop::class.java.name).log(System.Logger.Level.WARNING, advice() + ". Older versions are untested.")
        }
    }

    /** The advice, if [failure] is (or was caused by) a linkage error and the stdlib is older; else null. */
    fun explain(failure: Throwable): String? {
        if (!older) return null
        var current: Throwable? = failure
        while (current != null) {
            if (current is LinkageError) return advice()
            current = current.cause
        }
        return null
    }
}
