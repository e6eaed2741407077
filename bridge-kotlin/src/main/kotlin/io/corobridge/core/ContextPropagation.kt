package io.corobridge.core

import io.corobridge.core.internal.CarriedContext
import io.corobridge.core.internal.Carriers
import io.corobridge.core.internal.Slf4jMdcCarrier
import io.corobridge.core.internal.ThreadLocalCarrier
import kotlin.coroutines.CoroutineContext
import kotlin.coroutines.EmptyCoroutineContext

/**
 * Carries one kind of thread-bound context (a logging MDC, a tracing span, any `ThreadLocal`) from the thread
 * that makes a call to the threads that run it: the loop thread while the call's coroutine runs there, a new
 * thread when a re-entrant call gets one, a worker thread while blocking code runs in `runInWorkerThread`.
 *
 * Register carriers with [ContextPropagation.register], or list them in a `META-INF/services/
 * io.corobridge.core.ContextCarrier` file (each with a public no-argument constructor) to have them found when
 * propagation is first used. Implementations must be thread-safe: [capture] runs on callers' threads, and
 * [install] and [restore] on the threads that run the calls, often several at a time.
 *
 * @param T the captured value
 * @since 0.1
 */
public interface ContextCarrier<T> {
    /**
     * On the calling thread, before the call is handed over: the value to carry (may be null).
     *
     * @since 0.1
     */
    public fun capture(): T

    /**
     * On the thread about to run a step of the call: makes [value] current, and returns what [restore] needs
     * to put back what was there (for a `ThreadLocal`, its previous value; for a tracing scope, the scope).
     *
     * @since 0.1
     */
    public fun install(value: T): Any?

    /**
     * On the same thread, after the step: undoes [install], given what it returned.
     *
     * @since 0.1
     */
    public fun restore(token: Any?)

    public companion object {
        /**
         * A carrier for [threadLocal]: the caller's value is current while the call runs, and the running
         * thread's own value (usually none) is back afterwards. A null value is carried as "no value" (the
         * running thread's value is removed while the call runs).
         *
         * @since 0.1
         */
        @JvmStatic
        public fun <T> of(threadLocal: ThreadLocal<T>): ContextCarrier<T?> = ThreadLocalCarrier(threadLocal)

        /**
         * A carrier for the SLF4J MDC, found at run time: corobridge does not depend on SLF4J. When SLF4J is not
         * on the class path, this returns null.
         *
         * @since 0.1
         */
        @JvmStatic
        public fun slf4jMdc(): ContextCarrier<*>? = Slf4jMdcCarrier.create()
    }
}

/**
 * The registry of [ContextCarrier]s, shared by every loop: while any carrier is registered, each call captures
 * the carried values on the calling thread (one `capture` per carrier) and installs them on whichever thread
 * runs it, step by step, restoring that thread's own values after each step. So concurrent callers never see
 * each other's values through the shared loop thread, and nothing a call installed is left behind.
 *
 * Captured when the call is made: `runSync`/`runAsync`/`launch` (and so `Bridge.sync`, `async`, `gather`,
 * `launch`, facades), a gather group's `fork`, and `runInWorkerThread`. A call made from code that runs on the
 * loop carries the values installed there, so they follow loop -> new thread -> loop -> worker chains. A value
 * a step changes is not kept for the next step: each step starts from the captured values (to change them for
 * a block of suspend code, set the thread-local and run the block in `withContext(ContextPropagation.capture())`).
 *
 * With no carrier registered (the default), calls capture nothing and pay nothing.
 *
 * @since 0.1
 */
public object ContextPropagation {
    /**
     * Registers [carrier] for every call made from now on; registering one that is already registered (or
     * equal to one) changes nothing. Safe from any thread.
     *
     * @since 0.1
     */
    @JvmStatic
    public fun register(carrier: ContextCarrier<*>) {
        Carriers.register(carrier)
    }

    /**
     * Unregisters [carrier] for calls made from now on; returns false if it was not registered.
     *
     * @since 0.1
     */
    @JvmStatic
    public fun unregister(carrier: ContextCarrier<*>): Boolean = Carriers.unregister(carrier)

    /** The registered carriers, in registration order (those found by the service loader first). */
    @JvmStatic
    public val carriers: List<ContextCarrier<*>>
        get() = Carriers.current().toList()

    /**
     * The carried values on this thread now, as a coroutine context element that installs them while a
     * coroutine runs (on any dispatcher), or [EmptyCoroutineContext] when no carrier is registered. For
     * coroutines corobridge does not start itself: `loop.scope.launch(ContextPropagation.capture()) { }`.
     *
     * @since 0.1
     */
    @JvmStatic
    public fun capture(): CoroutineContext = CarriedContext.capture() ?: EmptyCoroutineContext
}
