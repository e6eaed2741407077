package io.corobridge.core

import kotlin.coroutines.Continuation

/**
 * A call of a Kotlin `suspend` function in continuation-passing form: the shape such a function has when
 * called from Java, written as a Java lambda that passes the continuation on.
 *
 * ```java
 * SuspendCall<User> call = c -> userService.load(42, c);
 * User user = Bridge.sync(call);
 * ```
 *
 * From Java a Kotlin `suspend fun load(id: Int): User` is a method `Object load(int id, Continuation<? super
 * User> c)`; the lambda hands it the continuation corobridge provides. Such a function either returns its
 * result at once or returns Kotlin's `COROUTINE_SUSPENDED` marker and resumes the continuation later; both are
 * handled. A lambda may also resume the continuation itself (`c.resumeWith(value)`), even before it returns,
 * and then return the marker.
 *
 * The lambda runs on the loop thread (or, with [RunOn.CALLER_THREAD], on the caller's), from its first line.
 * Kotlin code passes suspend lambdas to [RunSyncLoop.runSync] and [RunSyncLoop.runAsync] instead: this is
 * deliberately not a `fun interface`, so a Kotlin lambda never converts to it by accident.
 *
 * Until 0.2 the Kotlin core called this type `ContinuationCall` and the Java API had a `SuspendCall` of its own
 * that extended it; there is now one type, this one.
 *
 * @since 0.1
 */
public interface SuspendCall<out T> {
    /**
     * Starts the call on the calling thread (a loop thread) with [continuation] as the point to resume.
     *
     * Returns either the result, or the marker `COROUTINE_SUSPENDED` (from `kotlin.coroutines.intrinsics`), in
     * which case [continuation] is resumed exactly once later, from any thread, possibly before this method has
     * returned. Throwing counts as failing with that exception.
     *
     * @since 0.1
     */
    public fun invoke(continuation: Continuation<T>): Any?
}
