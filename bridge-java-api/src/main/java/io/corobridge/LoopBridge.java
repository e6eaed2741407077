package io.corobridge;

import io.corobridge.core.BackgroundTask;
import io.corobridge.core.BackgroundTasksKt;
import io.corobridge.core.ConcurrencyLimits;
import io.corobridge.core.ConcurrencyLimitsKt;
import io.corobridge.core.FacadesKt;
import io.corobridge.core.FlowsKt;
import io.corobridge.core.GatherKt;
import io.corobridge.core.GatherScope;
import io.corobridge.core.GatherScopeKt;
import io.corobridge.core.Outcome;
import io.corobridge.core.RunOn;
import io.corobridge.core.RunSyncLoop;
import io.corobridge.core.ShutdownCallbacksKt;
import io.corobridge.core.SuspendCall;
import io.corobridge.core.WorkerThreadsKt;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.Callable;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeoutException;
import java.util.stream.Stream;
import kotlinx.coroutines.flow.Flow;
import org.jspecify.annotations.Nullable;

/**
 * The operations of {@link Bridge}, as instance methods bound to one {@link RunSyncLoop}: use it to run
 * calls on a loop of your own.
 *
 * <p>Safe to use from any thread. Obtain one with {@link Bridge#on(RunSyncLoop)}; it holds nothing but the
 * loop, so it is cheap to make and needs no closing (close the loop instead).
 *
 * <pre>{@code
 * try (RunSyncLoop loop = RunSyncLoop.create("db")) {
 *     LoopBridge db = Bridge.on(loop);
 *     User user = db.sync(c -> repository.load(42, c));
 * }
 * }</pre>
 *
 * @since 0.1
 */
public final class LoopBridge {
    private final RunSyncLoop loop;

    LoopBridge(RunSyncLoop loop) {
        this.loop = loop;
    }

    /**
     * Runs the call on this bridge's loop and returns its result, blocking the calling thread until it ends.
     *
     * <p>The call runs on the loop thread from its first line; while it is suspended the loop runs other
     * calls, so calls from many threads interleave. Whatever the call throws is rethrown unchanged, checked
     * exceptions included (undeclared, and never wrapped in {@code ExecutionException} or
     * {@code CompletionException}), with the caller's frames attached as a suppressed exception.
     *
     * <p>Called on a loop thread, where waiting would deadlock, the loop's
     * {@link io.corobridge.core.ReentryPolicy} decides: by default the call runs on a new thread with its own
     * event loop and a warning is logged once per call site; under {@code FAIL} an
     * {@link IllegalStateException} is thrown.
     *
     * <p>If the waiting thread is interrupted, the call is cancelled, this waits until it has finished
     * cancelling (its {@code finally} blocks have run), sets the interrupt flag again and throws
     * {@link CancellationException}. A call that ignores cancellation keeps the caller waiting; a second
     * interrupt then releases the caller and leaves the call behind.
     *
     * @throws CancellationException if the calling thread was interrupted, or the loop closed during the call
     * @throws IllegalStateException if the loop is closed, or the call is re-entrant under {@code FAIL}
     * @since 0.1
     */
    public <T extends @Nullable Object> T sync(SuspendCall<T> call) {
        Objects.requireNonNull(call, "call must not be null");
        return loop.runSync(call);
    }

    /**
     * Runs the call on this bridge's loop, blocking the calling thread until it ends or the timeout elapses.
     *
     * <p>Everything said of {@link #sync(SuspendCall)} holds. At the deadline the call is cancelled and, once
     * it has finished cancelling, {@link TimeoutException} is thrown; a result that arrived before the
     * cancellation took effect is returned instead.
     *
     * @throws TimeoutException if the call did not end within {@code timeout}
     * @throws IllegalArgumentException if {@code timeout} is zero or negative
     * @since 0.1
     */
    public <T extends @Nullable Object> T sync(Duration timeout, SuspendCall<T> call) throws TimeoutException {
        Objects.requireNonNull(timeout, "timeout must not be null");
        Objects.requireNonNull(call, "call must not be null");
        return loop.runSync(timeout, call);
    }

    /**
     * Runs the call where {@code runOn} says and returns its result, blocking the calling thread until it ends.
     *
     * <p>{@link RunOn#LOOP} is {@link #sync(SuspendCall)}. {@link RunOn#CALLER_THREAD} runs the call on the
     * calling thread itself, in an event loop of the call's own, as {@code runBlocking} does: no hop to the
     * loop thread and back, and many callers' work runs in parallel, which on real I/O makes it as fast as a
     * hand-written {@code runBlocking} helper. Use it for calls that share no state bound to the loop. All
     * else said of {@link #sync(SuspendCall)} holds for both: exceptions unchanged, interrupt cancels the call,
     * the re-entry policy on a loop thread, closing the loop cancels the call.
     *
     * @throws CancellationException if the calling thread was interrupted, or the loop closed during the call
     * @throws IllegalStateException if the loop is closed, or the call is re-entrant under {@code FAIL}
     * @since 0.2
     */
    public <T extends @Nullable Object> T sync(RunOn runOn, SuspendCall<T> call) {
        Objects.requireNonNull(runOn, "runOn must not be null");
        Objects.requireNonNull(call, "call must not be null");
        return loop.runSync(runOn, call);
    }

    /**
     * {@link #sync(RunOn, SuspendCall)} with a deadline: at the deadline the call is cancelled and, once it has
     * finished cancelling, {@link TimeoutException} is thrown.
     *
     * @throws TimeoutException if the call did not end within {@code timeout}
     * @throws IllegalArgumentException if {@code timeout} is zero or negative
     * @since 0.2
     */
    public <T extends @Nullable Object> T sync(RunOn runOn, Duration timeout, SuspendCall<T> call)
            throws TimeoutException {
        Objects.requireNonNull(runOn, "runOn must not be null");
        Objects.requireNonNull(timeout, "timeout must not be null");
        Objects.requireNonNull(call, "call must not be null");
        return loop.runSync(runOn, timeout, call);
    }

    /**
     * Starts the call on this bridge's loop and returns a future of its result, without blocking.
     *
     * <p>The future completes on the thread that finishes the call, normally the loop thread, so stages added
     * with {@code thenApply} and friends before it completes run there too: keep them short or pass your own
     * executor. It completes exceptionally with exactly what the call threw ({@code get} wraps it in
     * {@code ExecutionException} and {@code join} in {@code CompletionException}, as for any future).
     *
     * <p>Cancelling the future cancels the call, whether it is still queued or already running;
     * {@code mayInterruptIfRunning} has no effect, the loop thread is never interrupted. Completing the future
     * from outside, {@code orTimeout} included, cancels the call too. Waiting on the future with {@code get}
     * or {@code join} from this loop's own thread throws {@link IllegalStateException} instead of deadlocking.
     *
     * @throws IllegalStateException if the loop is closed
     * @since 0.1
     */
    public <T extends @Nullable Object> CompletableFuture<T> async(SuspendCall<T> call) {
        Objects.requireNonNull(call, "call must not be null");
        return loop.runAsync(call);
    }

    /**
     * Returns a call that runs blocking {@code work} on one of this loop's worker threads when it is started,
     * so that blocking Java code can sit among suspend calls without stalling the loop: pass it to {@link
     * #gather(List)}, {@link #async(SuspendCall)}, {@link #launch(SuspendCall)} or {@link #sync(SuspendCall)}.
     *
     * <p>At most {@link RunSyncLoop#getWorkerLimit()} such blocks (40 unless set) run at once; the others wait,
     * first come first served, without blocking the loop. The block runs on a daemon thread named {@code
     * corobridge-worker-<loop>-<n>}; there, {@code Bridge.sync} runs calls on the loop and blocks only that
     * worker. What the block throws, checked exceptions included, is what the call throws. Cancelling the call
     * abandons the worker: the call ends at once, the block runs on undisturbed and its late result is discarded
     * ({@link io.corobridge.core.RunContext#isAbandoned()} lets it stop early).
     *
     * @throws NullPointerException if {@code work} is null
     * @since 0.1
     */
    public <T extends @Nullable Object> SuspendCall<T> inWorkerThread(Callable<? extends T> work) {
        Objects.requireNonNull(work, "work must not be null");
        return WorkerThreadsKt.inWorkerThread(loop, work);
    }

    /**
     * Runs the calls at once on this bridge's loop and returns their results in the order of the calls,
     * {@code null} results included, blocking the calling thread until all have ended.
     *
     * <p>The calls run as coroutines on the loop thread, interleaving as they suspend. The first call to fail
     * cancels the others; once they have finished, its exception is rethrown unchanged, with the failures of
     * other calls attached as suppressed exceptions (the cancellations it caused are never what you see).
     *
     * <p>Interrupting the waiting thread, or the loop closing, cancels every call; this then behaves as
     * {@link #sync(SuspendCall)} does. The list is copied when this is called.
     *
     * @throws NullPointerException if {@code calls} or one of its elements is null (the message names the index)
     * @since 0.1
     */
    public <T extends @Nullable Object> List<T> gather(List<? extends SuspendCall<? extends T>> calls) {
        return loop.runSync(GatherKt.gatherCall(checked(calls), Integer.MAX_VALUE));
    }

    /**
     * Like {@link #gather(List)}, with at most {@code maxConcurrency} calls started and unfinished at once: a
     * call starts only when a slot is free, so 10,000 calls with a bound of 8 never hold more than 8
     * coroutines.
     *
     * @throws IllegalArgumentException if {@code maxConcurrency} is less than 1
     * @since 0.1
     */
    public <T extends @Nullable Object> List<T> gather(int maxConcurrency, List<? extends SuspendCall<? extends T>> calls) {
        return loop.runSync(GatherKt.gatherCall(checked(calls), maxConcurrency));
    }

    /**
     * Starts the calls at once on this bridge's loop and returns a future of their results in call order,
     * without blocking. The future completes on the loop thread when all calls have ended, or exceptionally
     * with the first failure (as {@link #gather(List)} describes). Cancelling the future cancels every call.
     *
     * @since 0.1
     */
    public <T extends @Nullable Object> CompletableFuture<List<T>> gatherAsync(List<? extends SuspendCall<? extends T>> calls) {
        return loop.runAsync(GatherKt.gatherCall(checked(calls), Integer.MAX_VALUE));
    }

    /**
     * {@link #gatherAsync(List)} with at most {@code maxConcurrency} calls running at once.
     *
     * @throws IllegalArgumentException if {@code maxConcurrency} is less than 1
     * @since 0.1
     */
    public <T extends @Nullable Object> CompletableFuture<List<T>> gatherAsync(
            int maxConcurrency, List<? extends SuspendCall<? extends T>> calls) {
        return loop.runAsync(GatherKt.gatherCall(checked(calls), maxConcurrency));
    }

    /**
     * Runs the calls at once on this bridge's loop and returns how each one ended, in the order of the calls,
     * blocking the calling thread until the last has ended: an {@link Outcome} holding its value or the exception
     * it threw, unchanged. Prefect's {@code gather(..., return_exceptions=True)}.
     *
     * <p>Every call runs to its end: a failure cancels nothing, and nothing is thrown for it. The calls run as
     * coroutines on the loop thread, interleaving as they suspend. Interrupting the waiting thread, or the loop
     * closing, cancels every call still running (calls not yet started never start); this then behaves as
     * {@link #sync(SuspendCall)} does. The list is copied when this is called.
     *
     * <pre>{@code
     * List<Outcome<User>> outcomes = Bridge.gatherSettled(ids.stream()
     *         .map(id -> (SuspendCall<User>) c -> users.load(id, c)).toList());
     * }</pre>
     *
     * @throws NullPointerException if {@code calls} or one of its elements is null (the message names the index)
     * @since 0.2
     */
    public <T extends @Nullable Object> List<Outcome<T>> gatherSettled(List<? extends SuspendCall<? extends T>> calls) {
        return loop.runSync(GatherKt.gatherSettledCall(checked(calls), Integer.MAX_VALUE));
    }

    /**
     * {@link #gatherSettled(List)} with at most {@code maxConcurrency} calls started and unfinished at once.
     *
     * @throws IllegalArgumentException if {@code maxConcurrency} is less than 1
     * @since 0.2
     */
    public <T extends @Nullable Object> List<Outcome<T>> gatherSettled(
            int maxConcurrency, List<? extends SuspendCall<? extends T>> calls) {
        return loop.runSync(GatherKt.gatherSettledCall(checked(calls), maxConcurrency));
    }

    /**
     * Starts the calls at once on this bridge's loop and returns a future of how each one ended, in call order,
     * without blocking. The future completes on the loop thread once every call has ended; it fails only if the
     * gather itself is cancelled. Cancelling the future cancels every call still running.
     *
     * @since 0.2
     */
    public <T extends @Nullable Object> CompletableFuture<List<Outcome<T>>> gatherSettledAsync(
            List<? extends SuspendCall<? extends T>> calls) {
        return loop.runAsync(GatherKt.gatherSettledCall(checked(calls), Integer.MAX_VALUE));
    }

    /**
     * {@link #gatherSettledAsync(List)} with at most {@code maxConcurrency} calls started and unfinished at once.
     *
     * @throws IllegalArgumentException if {@code maxConcurrency} is less than 1
     * @since 0.2
     */
    public <T extends @Nullable Object> CompletableFuture<List<Outcome<T>>> gatherSettledAsync(
            int maxConcurrency, List<? extends SuspendCall<? extends T>> calls) {
        return loop.runAsync(GatherKt.gatherSettledCall(checked(calls), maxConcurrency));
    }

    /**
     * Returns a {@link Stream} of the elements a Kotlin {@code Flow} emits, read on the calling thread in the order
     * emitted while the flow is collected on this bridge's loop. Close it: best with try-with-resources.
     *
     * <pre>{@code
     * try (Stream<Order> orders = bridge.stream(service.orders(customer))) {
     *     orders.filter(Order::isOpen).limit(10).forEach(this::show);
     * }
     * }</pre>
     *
     * <p>The first read starts the flow. A read blocks while no element is ready; the flow runs at most 64
     * elements ahead of the reader (see {@link #stream(int, Flow)}). If the flow fails, the reader gets its
     * exception unchanged, checked ones too, after the elements emitted before it.
     *
     * <p>Closing the stream cancels the flow and returns once its {@code finally} blocks have run; reading a
     * closed stream throws {@link IllegalStateException}. A stream dropped unclosed is cancelled once garbage
     * collected. Interrupting the reading thread cancels the flow, waits for it, sets the interrupt flag again and
     * throws {@link CancellationException}, as does a read after the loop closed. Read on a loop thread, the
     * flow runs on a new thread rather than deadlocking (or, under {@code ReentryPolicy.FAIL}, the read throws
     * {@link IllegalStateException}).
     *
     * @since 0.2
     */
    public <T extends @Nullable Object> Stream<T> stream(Flow<? extends T> flow) {
        Objects.requireNonNull(flow, "flow must not be null");
        return FlowsKt.stream(loop, flow);
    }

    /**
     * {@link #stream(Flow)} with the flow running at most {@code buffer} elements ahead of the reader: that many
     * wait in the buffer and the flow is suspended in {@code emit} of the next, until the reader has taken half.
     *
     * @throws IllegalArgumentException if {@code buffer} is less than 1
     * @since 0.2
     */
    public <T extends @Nullable Object> Stream<T> stream(int buffer, Flow<? extends T> flow) {
        Objects.requireNonNull(flow, "flow must not be null");
        return FlowsKt.stream(loop, flow, buffer);
    }

    /**
     * Returns a {@link java.util.concurrent.Flow.Publisher} of the elements a Kotlin {@code Flow} emits, collected
     * on this bridge's loop once per subscriber, with the Reactive Streams rules (demand, cancellation, one
     * signal at a time) kept by kotlinx-coroutines-jdk9.
     *
     * <p>The subscriber's methods run on the loop thread: keep them short. {@code cancel()} cancels the flow; a
     * failure of the flow reaches {@code onError} unchanged; a {@code null} element ends the subscription with
     * {@code onError(NullPointerException)}, and {@code request(n)} with {@code n <= 0} with
     * {@code onError(IllegalArgumentException)}. Closing the loop cancels every subscription with
     * {@code onError(CancellationException)}.
     *
     * @since 0.2
     */
    public <T> java.util.concurrent.Flow.Publisher<T> publisher(Flow<? extends T> flow) {
        Objects.requireNonNull(flow, "flow must not be null");
        return FlowsKt.publisher(loop, flow);
    }

    /**
     * Starts the call on this bridge's loop as a background task and returns at once, without blocking: fire
     * and forget, never lost. The loop holds the task until it ends and reports its failure to the loop's
     * failure handler. See {@link BackgroundTask}.
     *
     * @throws IllegalStateException if the loop is closed
     * @since 0.1
     */
    public BackgroundTask launch(SuspendCall<?> call) {
        Objects.requireNonNull(call, "call must not be null");
        return BackgroundTasksKt.launch(loop, call);
    }

    /**
     * Registers a callback that runs exactly once when this bridge's loop closes (by {@code close()}, or at
     * JVM exit for the default loop): on the loop thread, after the background tasks have ended, in reverse
     * order of registration. One that throws is reported to the loop's failure handler and the others still
     * run.
     *
     * @throws IllegalStateException if the loop is closed
     * @since 0.1
     */
    public void onShutdown(Runnable callback) {
        Objects.requireNonNull(callback, "callback must not be null");
        ShutdownCallbacksKt.onShutdown(loop, callback);
    }

    /**
     * Opens a {@link GatherScope} on this bridge's loop: calls forked into it start on the loop at once and
     * are joined together. Close it, best with try-with-resources.
     *
     * @throws IllegalStateException if the loop is closed
     * @since 0.1
     */
    public <T extends @Nullable Object> GatherScope<T> openGather() {
        return GatherScopeKt.openGather(loop);
    }

    private static <C> List<C> checked(List<C> calls) {
        Objects.requireNonNull(calls, "calls must not be null");
        List<C> copy = new ArrayList<>(calls.size());
        for (C call : calls) {
            if (call == null) {
                throw new NullPointerException("calls[" + copy.size() + "] must not be null");
            }
            copy.add(call);
        }
        return copy;
    }

    /**
     * Returns an implementation of the Java interface {@code facadeInterface} whose methods call the suspend
     * methods of {@code suspendImplementation} on this bridge's loop: {@code User load(String)} blocks like
     * {@link #sync(SuspendCall)}, {@code CompletableFuture<User> loadAsync(String)} returns at once like
     * {@link #async(SuspendCall)}. Default methods run as written.
     *
     * <p>Every method is checked now, not at its first call: one {@link IllegalArgumentException} lists each
     * method without a matching suspend method, with ambiguous overloads, or with incompatible types.
     * Exceptions pass through unchanged when unchecked or declared by the facade method; an undeclared checked
     * exception arrives wrapped in {@link java.lang.reflect.UndeclaredThrowableException}. Calls cost a method
     * handle invocation on top of {@code sync}/{@code async}; no reflection per call.
     *
     * @throws NullPointerException if an argument is null
     * @throws IllegalArgumentException if {@code facadeInterface} is not an interface or does not match
     * @since 0.1
     */
    public <F> F facade(Class<F> facadeInterface, Object suspendImplementation) {
        Objects.requireNonNull(facadeInterface, "facadeInterface must not be null");
        Objects.requireNonNull(suspendImplementation, "suspendImplementation must not be null");
        return FacadesKt.facade(loop, facadeInterface, suspendImplementation);
    }

    /**
     * {@link #facade(Class, Object)} whose blocking methods run their calls where {@code runOn} says:
     * {@link RunOn#CALLER_THREAD} runs each on the calling thread, as {@link #sync(RunOn, SuspendCall)} does,
     * for an implementation that keeps no state bound to the loop (an HTTP client, say). Methods that return a
     * future still run on the loop.
     *
     * @throws NullPointerException if an argument is null
     * @throws IllegalArgumentException if {@code facadeInterface} is not an interface or does not match
     * @since 0.2
     */
    public <F> F facade(Class<F> facadeInterface, Object suspendImplementation, RunOn runOn) {
        Objects.requireNonNull(facadeInterface, "facadeInterface must not be null");
        Objects.requireNonNull(suspendImplementation, "suspendImplementation must not be null");
        Objects.requireNonNull(runOn, "runOn must not be null");
        return FacadesKt.facade(loop, facadeInterface, suspendImplementation, runOn);
    }

    /**
     * Returns this loop's named concurrency limits (one registry per loop).
     *
     * @since 0.1
     */
    public ConcurrencyLimits limits() {
        // Asked for each time, not when the bridge is made: a loop may still be given a shared store after
        // Bridge.on(loop), as long as its limits were never used.
        return ConcurrencyLimitsKt.getLimits(loop);
    }

    /**
     * Returns the loop this bridge runs calls on.
     *
     * @since 0.1
     */
    public RunSyncLoop loop() {
        return loop;
    }

    @Override
    public String toString() {
        return "LoopBridge(" + loop + ")";
    }
}
