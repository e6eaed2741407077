package io.corobridge.core.internal

import java.lang.invoke.MethodHandle
import java.lang.invoke.MethodHandles
import java.lang.invoke.MethodType

/*
 * "Is a coroutine running on this thread?", answered in nanoseconds, for RunContext.isInCoroutine and so for
 * every blocking twin built with asyncDispatch. Walking the stack would answer exactly, but costs about 6 µs
 * even for 8 frames (measured on JDK 17 and 25), more than a whole blocking call; so the answer comes from what
 * kotlinx.coroutines itself keeps per thread instead:
 *
 *  - Dispatchers.Default and Dispatchers.IO run coroutines on threads of one class, CoroutineScheduler.Worker;
 *  - runBlocking (and Dispatchers.Unconfined) keep an event loop in a thread-local whose use count is above
 *    zero exactly while they run on that thread.
 *
 * Both are kotlinx internals, found once by name through reflection. If a kotlinx version renames them, that
 * signal is simply absent (the answer falls back to "not in a coroutine", never an error), and
 * AsyncDispatchTest, which checks each signal, fails to tell us.
 */
internal object CoroutineThreads {
    private val schedulerWorker: Class<*>? = findClass("kotlinx.coroutines.scheduling.CoroutineScheduler\$Worker")

    /** `ThreadLocalEventLoop.currentOrNull()`, then `EventLoop.isActive`; null if either cannot be found. */
    private val currentEventLoop: MethodHandle?
    private val eventLoopActive: MethodHandle?

    init {
        var current: MethodHandle? = null
        var active: MethodHandle? = null
        try {
            val holder = findClass("kotlinx.coroutines.ThreadLocalEventLoop")
            val loop = findClass("kotlinx.coroutines.EventLoop")
            if (holder != null && loop != null) {
                val lookup = MethodHandles.publicLookup()
                val instance = holder.getField("INSTANCE").get(null)
                current = lookup.findVirtual(holder, "currentOrNull\$kotlinx_coroutines_core", MethodType.methodType(loop))
                    .bindTo(instance)
                    .asType(MethodType.methodType(Any::class.java))
                active = lookup.findVirtual(loop, "isActive", MethodType.methodType(Boolean::class.javaPrimitiveType))
                    .asType(MethodType.methodType(Boolean::class.javaPrimitiveType, Any::class.java))
            }
        } catch (_: ReflectiveOperationException) {
            current = null // this kotlinx version keeps its event loop elsewhere: no runBlocking signal
        }
        currentEventLoop = current
        eventLoopActive = active
    }

    /** True on a thread of kotlinx's Dispatchers.Default / Dispatchers.IO pool. */
    fun isSchedulerThread(thread: Thread): Boolean = schedulerWorker?.isInstance(thread) == true

    /** True while runBlocking (or an unconfined coroutine) runs on the current thread. */
    fun isEventLoopActive(): Boolean {
        val current = currentEventLoop ?: return false
        val active = eventLoopActive ?: return false
        val loop: Any = current.invoke() ?: return false
        return active.invoke(loop) as Boolean
    }

    private fun findClass(name: String): Class<*>? = try {
        Class.forName(name, false, kotlinx.coroutines.Job::class.java.classLoader)
    } catch (_: ClassNotFoundException) {
        null
    }
}
