package io.corobridge.context

import io.corobridge.core.ContextCarrier
import io.micrometer.context.ContextRegistry
import io.micrometer.context.ContextSnapshot
import io.micrometer.context.ContextSnapshotFactory

/**
 * Carries every thread-local registered in Micrometer's context-propagation [ContextRegistry] (the registry that
 * Reactor, Spring and Micrometer Tracing share: trace and span, MDC, security context, locale, ...) on each hop a
 * call makes: caller to loop, loop to worker thread, worker back to the loop, the re-entry thread, and each step
 * after a suspension.
 *
 * With this module on the class path it is registered by itself (`META-INF/services`), for every loop: nothing to
 * write. Registering it by hand (`ContextPropagation.register(new ContextRegistryCarrier())`) is needed only where
 * the service loader is not used, and changes nothing if it is registered already (carriers of the same registry
 * are equal).
 *
 * On the calling thread, [capture] takes a snapshot of every registered value ([ContextSnapshotFactory.captureAll]);
 * on the thread that runs a step, [install] makes those values current and [restore] puts back what that thread
 * had. A value the caller does not have is cleared while the step runs, so no value of one caller is ever seen by
 * another through a shared loop or worker thread.
 *
 * Thread-safe. The cost is the registry's: one snapshot per call, one set and reset of each registered
 * thread-local per step.
 *
 * @since 0.2
 */
public class ContextRegistryCarrier @JvmOverloads constructor(
    private val registry: ContextRegistry = ContextRegistry.getInstance(),
) : ContextCarrier<ContextSnapshot> {
    private val snapshots: ContextSnapshotFactory =
        ContextSnapshotFactory.builder().contextRegistry(registry).clearMissing(true).build()

    /** On the calling thread: every value the registry's accessors see now. */
    override fun capture(): ContextSnapshot = snapshots.captureAll()

    /** On the thread about to run a step: makes the captured values current; returns the scope that undoes it. */
    override fun install(value: ContextSnapshot): Any = value.setThreadLocals()

    /** On the same thread, after the step: the thread's own values again. */
    override fun restore(token: Any?) {
        (token as ContextSnapshot.Scope).close()
    }

    /** Carriers of the same registry are one: registering a second changes nothing. */
    override fun equals(other: Any?): Boolean = other is ContextRegistryCarrier && other.registry === registry

    override fun hashCode(): Int = System.identityHashCode(registry)

    override fun toString(): String = "ContextRegistryCarrier(${registry.threadLocalAccessors.map { it.key() }})"
}
