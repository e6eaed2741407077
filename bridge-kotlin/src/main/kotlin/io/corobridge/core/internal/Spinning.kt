package io.corobridge.core.internal

import io.corobridge.core.RunSyncLoop
import java.lang.invoke.MethodHandle
import java.lang.invoke.MethodHandles
import java.lang.invoke.MethodType

/**
 * The caller's side of adaptive waiting: spin briefly for an answer before parking, when that helps.
 *
 * A caller does not spin on a virtual thread (parking one is cheap, and spinning would hold its carrier), or
 * when as many callers are spinning already as there are processors less one, so that spinners never take
 * the processor the loop thread needs to produce their answers.
 */
internal object Spinning {
    internal val processorsForCallers: Int = Runtime.getRuntime().availableProcessors() - 1

    /** `Thread.isVirtual()` on JDK 21 and later; absent on JDK 17, where no thread is virtual. */
    internal val isVirtualHandle: MethodHandle? = try {
        MethodHandles.publicLookup().findVirtual(
            Thread::class.java, "isVirtual", MethodType.methodType(Boolean::class.javaPrimitiveType)
        )
    } catch (_: ReflectiveOperationException) {
        null
    }

    fun isVirtual(thread: Thread): Boolean = isVirtualHandle?.let { it.invoke(thread) as Boolean } ?: false

    /** Spins until [done] or the loop's caller spin time has passed. */
    inline fun spinUntil(loop: RunSyncLoop, done: () -> Boolean) {
        val nanos = loop.waitStrategy.callerSpinNanos
        if (nanos <= 0L || done() || isVirtual(Thread.currentThread())) return
        val spinning = loop.spinningCallers
        try {
            if (spinning.incrementAndGet() > processorsForCallers) return
            val deadline = System.nanoTime() + nanos
            var turns = 0
            while (!done()) {
                Thread.onSpinWait()
                if (++turns and 63 == 0 && System.nanoTime() - deadline >= 0) return
            }
        } finally {
            spinning.decrementAndGet()
        }
    }
}
