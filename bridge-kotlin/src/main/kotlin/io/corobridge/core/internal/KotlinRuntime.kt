package io.corobridge.core.internal

import io.corobridge.core.RunSyncLoop
import java.util.concurrent.atomic.AtomicBoolean

/**
 * corobridge is built with kotlin-stdlib 2.4 and works on 2.1 or newer (`.ci/compat` runs the Java face's tests
 * on another version: 2.1.0, 2.2.21 and 2.3.21 pass; on 2.0.21 the loop thread dies of a NoClassDefFoundError for
 * kotlin.coroutines.jvm.internal.SpillingKt, which code from the 2.4 compiler needs). An older one on the class
 * path (Maven keeps the nearest version, and another dependency may bring one) fails somewhere with an error that
 * names only a class of the standard library, so it gets a warning first, once, and a failure it causes at the
 * default loop's start says what to do. This uses nothing newer than KotlinVersion (1.1), so it runs on the oldest
 * stdlib too.
 */
internal object KotlinRuntime {
    private const val MAJOR = 2
    private const val MINOR = 1
    private val warned = AtomicBoolean()

    private val older: Boolean
        get() = KotlinVersion.CURRENT.let { it.major < MAJOR || (it.major == MAJOR && it.minor < MINOR) }

    private fun advice(): String =
        "corobridge needs kotlin-stdlib " + MAJOR + "." + MINOR + " or newer, and this class path has " +
            KotlinVersion.CURRENT + " (another dependency brought it, and Maven kept the nearest version): import " +
            "io.corobridge:corobridge-bom, or pin org.jetbrains.kotlin:kotlin-stdlib, in dependencyManagement"

    /** Logs a WARNING, once per process, if the kotlin-stdlib on the class path is older than corobridge needs. */
    fun warnIfOlder() {
        if (older && warned.compareAndSet(false, true)) {
            System.getLogger(RunSyncLoop::class.java.name).log(System.Logger.Level.WARNING, advice())
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
