package io.corobridge.core.internal

import io.corobridge.core.RunSyncLoop
import java.lang.invoke.MethodHandle
import java.lang.invoke.MethodHandles
import java.lang.invoke.MethodType
import java.util.concurrent.ThreadLocalRandom

/**
 * The caller's side of adaptive waiting: spin briefly for an answer before parking, when that helps.
 *
 * A caller does not spin on a virtual thread (parking one is cheap, and spinning would hold its carrier), or
 * when as many callers are spinning already as there are processors less one, so that spinners never take
 * the processor the loop thread needs to produce their answers.
 *
 * Nor does a caller spin while spinning keeps failing on its loop: after [MISSES_TO_PAUSE] spins in a row
 * that ended without an answer, callers park at once, except that one wait in [PROBE_ONE_IN] (chosen at
 * random, so no caller state is shared) still spins to find out whether answers come quickly again; a spin
 * that gets its answer starts the count afresh. With many callers queued behind each other, or calls that
 * wait for I/O, a spin only burns the processor that other threads need: 64 callers of immediate calls on
 * two cores made 12-18% more calls with the pause than without it (benchmarks' CallerScale). Only spinning callers
 * write the count, and at most one fewer of them than there are processors, so it is not a contended field.
 */
internal object Spinning {
    /** Spins in a row without an answer after which callers stop spinning. */
    const val MISSES_TO_PAUSE: Int = 8

    /** While paused, one wait in this many spins anyway (a power of two). */
    const val PROBE_ONE_IN: Int = 16

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
        val misses = loop.spinMisses
        if (misses >= MISSES_TO_PAUSE && !isProbe()) return
        val spinning = loop.spinningCallers
        try {
            if (spinning.incrementAndGet() > processorsForCallers) return
            val deadline = System.nanoTime() + nanos
            var turns = 0
            while (!done()) {
                Thread.onSpinWait()
                if (++turns and 63 == 0 && System.nanoTime() - deadline >= 0) {
                    if (misses < MISSES_TO_PAUSE) loop.spinMisses = misses + 1
                    return
                }
            }
            if (misses != 0) loop.spinMisses = 0
        } finally {
            spinning.decrementAndGet()
        }
    }

    fun isProbe(): Boolean = ThreadLocalRandom.current().nextInt() and (PROBE_ONE_IN - 1) == 0
}
