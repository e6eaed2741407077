package io.corobridge.core

import io.corobridge.core.internal.Facades

/*
 * Facades: a Java interface implemented at run time over an object with suspend methods (the machinery is in
 * internal/Facades.kt).
 */

/**
 * Implements the Java interface [facadeInterface] over [implementation], an object with suspend methods,
 * so Java code calls them as ordinary methods. For a suspend `load(id: String): User`, the interface may
 * declare `User load(String id)`, which blocks on this loop like [RunSyncLoop.runSync], and
 * `CompletableFuture<User> loadAsync(String id)` (or `CompletionStage`), which returns at once like
 * [RunSyncLoop.runAsync]. Default methods run as written; `toString`, `equals` and `hashCode` are the proxy's own.
 *
 * Every abstract method is matched when the facade is made, by name, parameter types (boxing allowed) and
 * result type; all mismatches are reported together. What the suspend method throws reaches the caller
 * unchanged if it is unchecked or declared by the interface method, else wrapped in
 * [java.lang.reflect.UndeclaredThrowableException].
 *
 * @throws IllegalArgumentException if [facadeInterface] is not an interface, or lists every method that
 *   has no matching suspend method, matches several overloads, or has incompatible types
 *
 * @since 0.1
 */
public fun <F : Any> RunSyncLoop.facade(facadeInterface: Class<F>, implementation: Any): F =
    Facades.create(this, facadeInterface, implementation, RunOn.LOOP)

/**
 * [facade] whose blocking methods run their calls where [runOn] says: [RunOn.CALLER_THREAD] runs each on the
 * calling thread, as `runSync(RunOn.CALLER_THREAD, ..)` does, for an implementation that keeps no state
 * bound to the loop (an HTTP client, say). Methods that return a future still run on the loop.
 *
 * @throws IllegalArgumentException as [facade] does
 * @since 0.2
 */
public fun <F : Any> RunSyncLoop.facade(facadeInterface: Class<F>, implementation: Any, runOn: RunOn): F =
    Facades.create(this, facadeInterface, implementation, runOn)
