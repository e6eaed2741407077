package io.corobridge.core.internal

import io.corobridge.core.ContextCarrier
import java.util.ServiceConfigurationError
import java.util.ServiceLoader
import kotlin.coroutines.CoroutineContext
import kotlinx.coroutines.ThreadContextElement

/*
 * Context propagation: the registry of carriers, and the coroutine context element that holds what one call
 * captured and installs it around each step of the call's coroutine, wherever that step runs.
 *
 * kotlinx.coroutines calls updateThreadContext/restoreThreadContext around every dispatched or undispatched
 * step of a coroutine whose context holds the element, on any dispatcher, and children inherit the element. A
 * call's first step is started by LoopCall itself, which installs around it by hand; a worker's block is not a
 * coroutine, and WorkerTask does the same around it.
 */

/** The registered carriers, as an array that is replaced (never changed) on registration. */
internal object Carriers {
    private val logger: System.Logger = System.getLogger(ContextCarrier::class.java.name)

    @Volatile
    private var registered: Array<ContextCarrier<Any?>> = loadServices()

    /** The carriers now; empty unless some were registered or found by the service loader. */
    fun current(): Array<ContextCarrier<Any?>> = registered

    @Synchronized
    fun register(carrier: ContextCarrier<*>) {
        if (registered.any { it == carrier }) return
        @Suppress("UNCHECKED_CAST")
        registered = registered + (carrier as ContextCarrier<Any?>)
    }

    @Synchronized
    fun unregister(carrier: ContextCarrier<*>): Boolean {
        val left = registered.filter { it != carrier }
        if (left.size == registered.size) return false
        registered = left.toTypedArray()
        return true
    }

    /** Carriers listed in META-INF/services; one that cannot be loaded is reported and left out. */
    private fun loadServices(): Array<ContextCarrier<Any?>> {
        val found = ArrayList<ContextCarrier<Any?>>()
        val providers = ServiceLoader.load(ContextCarrier::class.java, ContextCarrier::class.java.classLoader).iterator()
        while (true) {
            try {
                if (!providers.hasNext()) break
                @Suppress("UNCHECKED_CAST")
                found.add(providers.next() as ContextCarrier<Any?>)
            } catch (broken: ServiceConfigurationError) {
                logger.log(
                    System.Logger.Level.ERROR,
                    "a ContextCarrier listed in META-INF/services could not be loaded; its context is not " +
                        "propagated: ${broken.message}",
                    broken,
                )
            }
        }
        return found.toTypedArray()
    }

    fun reportInstallFailure(carrier: ContextCarrier<*>, what: String, failure: Throwable) {
        if (failure is VirtualMachineError) throw failure
        logger.logFailure(
            System.Logger.Level.ERROR,
            "context carrier ${describe(carrier)} failed to $what on thread \"${Thread.currentThread().name}\"; " +
                "the step runs on without it",
            failure,
        )
    }
}

/**
 * What one call captured: a value per carrier registered when it was made. With one carrier (the usual case)
 * the value and the install token are held as they are, without arrays: 48 bytes less per call.
 */
internal class CarriedContext private constructor(
    private val carriers: Array<ContextCarrier<Any?>>,
    /** The one carrier's value, or with several an array of their values. */
    private val captured: Any?,
) : ThreadContextElement<Any?> {

    override val key: CoroutineContext.Key<*>
        get() = Key

    /** Makes the captured values current on this thread; returns what [restore] needs. */
    fun install(): Any? {
        if (carriers.size == 1) return installOne(carriers[0], captured)
        @Suppress("UNCHECKED_CAST")
        val values = captured as Array<Any?>
        val tokens = arrayOfNulls<Any?>(carriers.size)
        for (i in carriers.indices) tokens[i] = installOne(carriers[i], values[i])
        return tokens
    }

    /** Puts back what this thread had before [install], newest carrier first. */
    fun restore(tokens: Any?) {
        if (carriers.size == 1) {
            restoreOne(carriers[0], tokens)
            return
        }
        @Suppress("UNCHECKED_CAST")
        val all = tokens as Array<Any?>
        for (i in carriers.indices.reversed()) restoreOne(carriers[i], all[i])
    }

    private fun installOne(carrier: ContextCarrier<Any?>, value: Any?): Any? = try {
        carrier.install(value)
    } catch (failure: Throwable) {
        Carriers.reportInstallFailure(carrier, "install the caller's context", failure)
        NOT_INSTALLED
    }

    private fun restoreOne(carrier: ContextCarrier<Any?>, token: Any?) {
        if (token === NOT_INSTALLED) return
        try {
            carrier.restore(token)
        } catch (failure: Throwable) {
            Carriers.reportInstallFailure(carrier, "restore the thread's own context", failure)
        }
    }

    override fun updateThreadContext(context: CoroutineContext): Any? = install()

    override fun restoreThreadContext(context: CoroutineContext, oldState: Any?) {
        restore(oldState)
    }

    override fun toString(): String = "CarriedContext(${carriers.size} carrier(s))"

    companion object Key : CoroutineContext.Key<CarriedContext> {
        private val NOT_INSTALLED = Any()

        /**
         * On the calling thread: the carried values, or null when no carrier is registered.
         *
         * @throws IllegalStateException if a carrier's capture throws (the call is then not made)
         */
        fun capture(): CarriedContext? {
            val carriers = Carriers.current()
            if (carriers.isEmpty()) return null
            if (carriers.size == 1) return CarriedContext(carriers, captureOne(carriers[0]))
            return CarriedContext(carriers, Array(carriers.size) { captureOne(carriers[it]) })
        }

        private fun captureOne(carrier: ContextCarrier<Any?>): Any? = try {
            carrier.capture()
        } catch (failure: Throwable) {
            if (failure is VirtualMachineError) throw failure
            throw IllegalStateException(
                "context carrier $carrier failed to capture the calling thread's context; the call was not made",
                failure,
            )
        }

        /** The parent context of a call made now: [base] (its dispatcher), plus what the caller carries. */
        fun callContext(base: CoroutineContext): CoroutineContext {
            val carried = capture() ?: return base
            return base + carried
        }
    }
}

/**
 * A carrier over one thread-bound value that can be read and written: installing swaps the captured value in
 * and returns the thread's own, which restoring writes back. A null value means "none" (removed or cleared).
 */
internal abstract class SwappingCarrier<T> : ContextCarrier<T?> {
    protected abstract fun read(): T?

    protected abstract fun write(value: T?)

    final override fun capture(): T? = read()

    final override fun install(value: T?): Any? {
        val own = read()
        write(value)
        return own
    }

    final override fun restore(token: Any?) {
        @Suppress("UNCHECKED_CAST")
        write(token as T?)
    }
}

/** The carrier behind [ContextCarrier.of]; two carriers of one thread-local are equal. */
internal class ThreadLocalCarrier<T>(private val threadLocal: ThreadLocal<T>) : SwappingCarrier<T>() {
    override fun read(): T? = threadLocal.get()

    override fun write(value: T?) {
        if (value == null) threadLocal.remove() else threadLocal.set(value)
    }

    override fun equals(other: Any?): Boolean = other is ThreadLocalCarrier<*> && other.threadLocal === threadLocal

    override fun hashCode(): Int = System.identityHashCode(threadLocal)

    override fun toString(): String = "ContextCarrier.of($threadLocal)"
}

/** The SLF4J MDC as a carrier, reached through method handles so that corobridge does not depend on SLF4J. */
internal class Slf4jMdcCarrier private constructor(
    private val copy: java.lang.invoke.MethodHandle,
    private val set: java.lang.invoke.MethodHandle,
    private val clear: java.lang.invoke.MethodHandle,
) : SwappingCarrier<Any>() {

    override fun read(): Any? = copy.invoke()

    override fun write(value: Any?) {
        if (value == null) clear.invoke() else set.invoke(value as Map<*, *>)
    }

    override fun equals(other: Any?): Boolean = other is Slf4jMdcCarrier

    override fun hashCode(): Int = Slf4jMdcCarrier::class.hashCode()

    override fun toString(): String = "ContextCarrier.slf4jMdc()"

    companion object {
        fun create(): Slf4jMdcCarrier? {
            val mdc = findClass("org.slf4j.MDC") ?: return null
            val lookup = java.lang.invoke.MethodHandles.publicLookup()
            val mapType = java.lang.invoke.MethodType.methodType(Map::class.java)
            return Slf4jMdcCarrier(
                lookup.findStatic(mdc, "getCopyOfContextMap", mapType),
                lookup.findStatic(mdc, "setContextMap", java.lang.invoke.MethodType.methodType(Void.TYPE, Map::class.java)),
                lookup.findStatic(mdc, "clear", java.lang.invoke.MethodType.methodType(Void.TYPE)),
            )
        }

        private fun findClass(name: String): Class<*>? {
            for (loader in listOf(ContextCarrier::class.java.classLoader, Thread.currentThread().contextClassLoader)) {
                try {
                    return Class.forName(name, true, loader)
                } catch (_: ClassNotFoundException) {
                    // Not visible from this loader; try the next.
                }
            }
            return null
        }
    }
}
