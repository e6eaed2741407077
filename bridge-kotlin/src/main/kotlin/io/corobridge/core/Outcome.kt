package io.corobridge.core

/**
 * How one call ended: with its value, or with the exception it threw, unchanged. A settled gather
 * ([gatherSettled], Java's `Bridge.gatherSettled`) returns one per call, in call order.
 *
 * Immutable and safe to share between threads. Two outcomes are equal when both succeeded with equal values, or
 * both failed with the same exception instance.
 *
 * ```java
 * for (Outcome<User> outcome : Bridge.gatherSettled(calls)) {
 *     if (outcome.isSuccess()) show(outcome.getOrThrow());
 *     else log.warn("load failed", outcome.exceptionOrNull());
 * }
 * ```
 *
 * @since 0.2
 */
public class Outcome<out T> private constructor(
    private val value: Any?,
    private val exception: Throwable?,
) {
    /** True if the call returned a value (`null` included). */
    public val isSuccess: Boolean
        get() = exception == null

    /** True if the call threw. */
    public val isFailure: Boolean
        get() = exception != null

    /**
     * Returns the call's value, or throws the exception it threw, unchanged: the same instance, checked
     * exceptions included (undeclared, as Kotlin throws them). Runs on the calling thread; never blocks.
     *
     * @since 0.2
     */
    @Suppress("UNCHECKED_CAST")
    public fun getOrThrow(): T {
        if (exception != null) throw exception
        return value as T
    }

    /**
     * Returns the call's value, or `null` if it threw.
     *
     * @since 0.2
     */
    @Suppress("UNCHECKED_CAST")
    public fun getOrNull(): T? = if (exception == null) value as T else null

    /**
     * Returns the exception the call threw, unchanged, or `null` if it returned a value.
     *
     * @since 0.2
     */
    public fun exceptionOrNull(): Throwable? = exception

    override fun equals(other: Any?): Boolean =
        other is Outcome<*> && exception === other.exception && (exception != null || value == other.value)

    override fun hashCode(): Int = if (exception != null) System.identityHashCode(exception) else value.hashCode()

    override fun toString(): String = if (exception != null) "Failure($exception)" else "Success($value)"

    public companion object {
        /**
         * An outcome that returned [value] (which may be `null`).
         *
         * @since 0.2
         */
        @JvmStatic
        public fun <T> success(value: T): Outcome<T> = Outcome(value, null)

        /**
         * An outcome that threw [exception].
         *
         * @since 0.2
         */
        @JvmStatic
        public fun <T> failure(exception: Throwable): Outcome<T> = Outcome(null, exception)
    }
}
