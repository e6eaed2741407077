package io.corobridge.core

import kotlin.coroutines.Continuation

/**
 * A suspend computation in continuation-passing form: the shape a Kotlin `suspend` function has when called
 * from Java, `continuation -> service.load(id, continuation)`.
 *
 * This is what the Java API (`io.corobridge.SuspendCall`) builds on; Kotlin code passes suspend lambdas to
 * [RunSyncLoop.runSync] and [RunSyncLoop.runAsync] instead. It is deliberately not a `fun interface`, so a
 * Kotlin lambda never converts to it by accident.
 *
 * @since 0.1
 */
public interface ContinuationCall<out T> {
    /**
     * Starts the computation on the calling thread (a loop thread).
     *
     * Returns either the result, or the marker `COROUTINE_SUSPENDED` (from
     * `kotlin.coroutines.intrinsics`), in which case [continuation] is resumed exactly once later, from any
     * thread, possibly before this method has returned. Throwing counts as failing with that exception.
     *
     * @since 0.1
     */
    public fun invoke(continuation: Continuation<T>): Any?
}
