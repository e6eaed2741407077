package io.corobridge;

import io.corobridge.core.ContinuationCall;
import kotlin.coroutines.Continuation;
import org.jspecify.annotations.Nullable;

/**
 * A call of a Kotlin {@code suspend} function, written as a Java lambda that passes the continuation on:
 *
 * <pre>{@code
 * SuspendCall<User> call = c -> userService.load(42, c);
 * User user = Bridge.sync(call);
 * }</pre>
 *
 * <p>From Java a Kotlin {@code suspend fun load(id: Int): User} is a method {@code Object load(int id,
 * Continuation<? super User> c)}; the lambda hands it the continuation corobridge provides. Such a
 * function either returns its result at once or returns Kotlin's {@code COROUTINE_SUSPENDED} marker and
 * resumes the continuation later; both are handled. A lambda may also resume the continuation itself
 * ({@code c.resumeWith(value)}), even before it returns, and then return the marker.
 *
 * <p>The lambda runs on the loop thread, from its first line. Resume the continuation at most once.
 *
 * @param <T> the result type; may be a {@code @Nullable} type
 * @since 0.1
 */
@FunctionalInterface
public interface SuspendCall<T extends @Nullable Object> extends ContinuationCall<T> {
    /**
     * Starts the call on the loop thread with {@code continuation} as the point to resume.
     *
     * @return the result, or {@code kotlin.coroutines.intrinsics.IntrinsicsKt.getCOROUTINE_SUSPENDED()} if
     *     the continuation will be resumed instead
     */
    @Override
    @Nullable Object invoke(Continuation<? super T> continuation);
}
