package io.corobridge;

import io.corobridge.core.GatherIncompleteException;
import io.corobridge.core.SuspendCall;
import org.jspecify.annotations.Nullable;

/**
 * Calls started one by one and joined together, shaped like the JDK's {@code StructuredTaskScope}: a
 * {@link Bridge#gather gather} whose calls are not all known up front.
 *
 * <p>Safe to use from any thread, though usually one thread forks, joins and closes.
 *
 * <pre>{@code
 * try (GatherScope<User> scope = Bridge.openGather()) {
 *     GatherScope.Handle<User> a = scope.fork(c -> users.load(1, c));
 *     GatherScope.Handle<User> b = scope.fork(c -> users.load(2, c));
 *     scope.join();                 // waits for both; rethrows the first failure
 *     show(a.get(), b.get());
 * }                                 // close(): nothing is left running
 * }</pre>
 *
 * @param <T> the calls' result type
 * @since 0.1
 */
public interface GatherScope<T extends @Nullable Object> extends AutoCloseable {
    /**
     * Starts the call on the loop and returns its handle at once, without blocking.
     *
     * @throws IllegalStateException if the scope or its loop is closed
     */
    Handle<T> fork(SuspendCall<? extends T> call);

    /**
     * Blocks until every call forked so far has ended; then rethrows, unchanged, the exception of the first
     * call that failed (it cancelled the others), with the other failures attached as suppressed.
     *
     * <p>Interrupting the waiting thread cancels every call in the scope, waits until they have finished,
     * sets the interrupt flag again and throws {@link java.util.concurrent.CancellationException}.
     *
     * @throws IllegalStateException if the scope is closed
     */
    void join();

    /**
     * Ends the scope, blocking until no call is left running: it waits for the calls still running, after
     * cancelling them if one has failed, and rethrows the first failure if {@link #join()} has not thrown it
     * already. Afterwards the scope refuses {@code fork} and {@code join}. Closing twice is harmless.
     */
    @Override
    void close();

    /**
     * The result of one forked call.
     *
     * @param <T> the result type
     */
    interface Handle<T extends @Nullable Object> {
        /**
         * Returns the call's result, without blocking, once the scope has joined.
         *
         * @throws GatherIncompleteException if no {@link GatherScope#join()} has covered this call yet
         * @throws IllegalStateException if the call failed or was cancelled (the failure is the cause)
         */
        T get();
    }
}
