package io.corobridge;

import io.corobridge.core.BackgroundTask;
import io.corobridge.core.ConcurrencyLimits;
import io.corobridge.core.FlowsKt;
import io.corobridge.core.GatherScope;
import io.corobridge.core.Outcome;
import io.corobridge.core.RunOn;
import io.corobridge.core.RunSyncLoop;
import io.corobridge.core.SuspendCall;
import java.time.Duration;
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
 * Calls Kotlin {@code suspend} functions from Java, on the process-wide run-sync loop.
 *
 * <p>Safe to use from any thread. Every call runs on one long-lived daemon thread,
 * {@code corobridge-loop-default}, started on first use and closed by a JVM shutdown hook, so clients bound
 * to that loop are shared by every call. For a loop of your own, use {@link #on(RunSyncLoop)}.
 *
 * <pre>{@code
 * User user = Bridge.sync(c -> users.load(42, c));                        // blocks until loaded
 * CompletableFuture<User> later = Bridge.async(c -> users.load(43, c));   // returns at once
 * }</pre>
 *
 * <p>Each method is the same as its {@link LoopBridge} namesake on {@link #loop()}; the details are there.
 *
 * @since 0.1
 */
public final class Bridge {
    private Bridge() {}

    /**
     * Runs the call on the default loop and returns its result, blocking the calling thread until it ends.
     *
     * <p>Exceptions the call throws are rethrown unchanged, checked ones included. Called on a loop thread,
     * it runs the call on a new thread (and warns once per call site) rather than deadlocking. If the waiting
     * thread is interrupted, the call is cancelled, the interrupt flag stays set, and
     * {@link CancellationException} is thrown once the call has finished cancelling. See
     * {@link LoopBridge#sync(SuspendCall)}.
     *
     * @since 0.1
     */
    public static <T extends @Nullable Object> T sync(SuspendCall<T> call) {
        return defaultBridge().sync(call);
    }

    /**
     * Runs the call on the default loop, blocking until it ends or the timeout elapses; at the deadline the
     * call is cancelled and {@link TimeoutException} thrown once it has finished cancelling. See
     * {@link LoopBridge#sync(Duration, SuspendCall)}.
     *
     * @throws TimeoutException if the call did not end within {@code timeout}
     * @throws IllegalArgumentException if {@code timeout} is zero or negative
     * @since 0.1
     */
    public static <T extends @Nullable Object> T sync(Duration timeout, SuspendCall<T> call)
            throws TimeoutException {
        return defaultBridge().sync(timeout, call);
    }

    /**
     * Runs the call where {@code runOn} says, blocking until it ends: {@link RunOn#LOOP} on the default loop's
     * thread (as {@link #sync(SuspendCall)}), {@link RunOn#CALLER_THREAD} on the calling thread in an event loop
     * of its own, as {@code runBlocking} does, for calls that share no state bound to the loop. See
     * {@link LoopBridge#sync(RunOn, SuspendCall)}.
     *
     * @since 0.2
     */
    public static <T extends @Nullable Object> T sync(RunOn runOn, SuspendCall<T> call) {
        return defaultBridge().sync(runOn, call);
    }

    /**
     * {@link #sync(RunOn, SuspendCall)} with a deadline; see {@link LoopBridge#sync(RunOn, Duration, SuspendCall)}.
     *
     * @throws TimeoutException if the call did not end within {@code timeout}
     * @throws IllegalArgumentException if {@code timeout} is zero or negative
     * @since 0.2
     */
    public static <T extends @Nullable Object> T sync(RunOn runOn, Duration timeout, SuspendCall<T> call)
            throws TimeoutException {
        return defaultBridge().sync(runOn, timeout, call);
    }

    /**
     * Starts the call on the default loop and returns a future of its result without blocking.
     *
     * <p>The future completes on the loop thread, so dependent stages may run there too; keep them short or
     * pass your own executor. Cancelling the future cancels the call. See
     * {@link LoopBridge#async(SuspendCall)}.
     *
     * @since 0.1
     */
    public static <T extends @Nullable Object> CompletableFuture<T> async(SuspendCall<T> call) {
        return defaultBridge().async(call);
    }

    /**
     * Runs the calls at once on the default loop and returns their results in call order, blocking until all
     * have ended. The first failure cancels the others and is rethrown unchanged, the other failures attached
     * as suppressed. See {@link LoopBridge#gather(List)}.
     *
     * @since 0.1
     */
    public static <T extends @Nullable Object> List<T> gather(List<? extends SuspendCall<? extends T>> calls) {
        return defaultBridge().gather(calls);
    }

    /**
     * {@link #gather(List)} with at most {@code maxConcurrency} calls started and unfinished at once. See
     * {@link LoopBridge#gather(int, List)}.
     *
     * @throws IllegalArgumentException if {@code maxConcurrency} is less than 1
     * @since 0.1
     */
    public static <T extends @Nullable Object> List<T> gather(int maxConcurrency, List<? extends SuspendCall<? extends T>> calls) {
        return defaultBridge().gather(maxConcurrency, calls);
    }

    /**
     * Starts the calls at once on the default loop and returns a future of their results in call order;
     * cancelling it cancels every call. See {@link LoopBridge#gatherAsync(List)}.
     *
     * @since 0.1
     */
    public static <T extends @Nullable Object> CompletableFuture<List<T>> gatherAsync(
            List<? extends SuspendCall<? extends T>> calls) {
        return defaultBridge().gatherAsync(calls);
    }

    /**
     * {@link #gatherAsync(List)} with at most {@code maxConcurrency} calls started and unfinished at once. See
     * {@link LoopBridge#gatherAsync(int, List)}.
     *
     * @throws IllegalArgumentException if {@code maxConcurrency} is less than 1
     * @since 0.2
     */
    public static <T extends @Nullable Object> CompletableFuture<List<T>> gatherAsync(
            int maxConcurrency, List<? extends SuspendCall<? extends T>> calls) {
        return defaultBridge().gatherAsync(maxConcurrency, calls);
    }

    /**
     * Runs the calls at once on the default loop and returns how each one ended, in call order, blocking until
     * the last has ended: a failure cancels nothing and is returned, unchanged, as that call's {@link Outcome}.
     * See {@link LoopBridge#gatherSettled(List)}.
     *
     * @since 0.2
     */
    public static <T extends @Nullable Object> List<Outcome<T>> gatherSettled(
            List<? extends SuspendCall<? extends T>> calls) {
        return defaultBridge().gatherSettled(calls);
    }

    /**
     * {@link #gatherSettled(List)} with at most {@code maxConcurrency} calls started and unfinished at once. See
     * {@link LoopBridge#gatherSettled(int, List)}.
     *
     * @throws IllegalArgumentException if {@code maxConcurrency} is less than 1
     * @since 0.2
     */
    public static <T extends @Nullable Object> List<Outcome<T>> gatherSettled(
            int maxConcurrency, List<? extends SuspendCall<? extends T>> calls) {
        return defaultBridge().gatherSettled(maxConcurrency, calls);
    }

    /**
     * Starts the calls at once on the default loop and returns a future of how each one ended, in call order;
     * cancelling it cancels every call still running. See {@link LoopBridge#gatherSettledAsync(List)}.
     *
     * @since 0.2
     */
    public static <T extends @Nullable Object> CompletableFuture<List<Outcome<T>>> gatherSettledAsync(
            List<? extends SuspendCall<? extends T>> calls) {
        return defaultBridge().gatherSettledAsync(calls);
    }

    /**
     * {@link #gatherSettledAsync(List)} with at most {@code maxConcurrency} calls started and unfinished at once.
     * See {@link LoopBridge#gatherSettledAsync(int, List)}.
     *
     * @throws IllegalArgumentException if {@code maxConcurrency} is less than 1
     * @since 0.2
     */
    public static <T extends @Nullable Object> CompletableFuture<List<Outcome<T>>> gatherSettledAsync(
            int maxConcurrency, List<? extends SuspendCall<? extends T>> calls) {
        return defaultBridge().gatherSettledAsync(maxConcurrency, calls);
    }

    /**
     * Returns a {@link Stream} of the elements a Kotlin {@code Flow} emits, read on the calling thread while the
     * flow is collected on the default loop; closing the stream cancels the flow. See
     * {@link LoopBridge#stream(Flow)}.
     *
     * @since 0.2
     */
    public static <T extends @Nullable Object> Stream<T> stream(Flow<? extends T> flow) {
        return defaultBridge().stream(flow);
    }

    /**
     * {@link #stream(Flow)} with the flow running at most {@code buffer} elements ahead of the reader. See
     * {@link LoopBridge#stream(int, Flow)}.
     *
     * @throws IllegalArgumentException if {@code buffer} is less than 1
     * @since 0.2
     */
    public static <T extends @Nullable Object> Stream<T> stream(int buffer, Flow<? extends T> flow) {
        return defaultBridge().stream(buffer, flow);
    }

    /**
     * Returns a {@link java.util.concurrent.Flow.Publisher} of the elements a Kotlin {@code Flow} emits, collected
     * on the default loop for each subscriber. See {@link LoopBridge#publisher(Flow)}.
     *
     * @since 0.2
     */
    public static <T> java.util.concurrent.Flow.Publisher<T> publisher(Flow<? extends T> flow) {
        return defaultBridge().publisher(flow);
    }

    /**
     * Returns a Kotlin {@code Flow} of the elements a {@link java.util.concurrent.Flow.Publisher} publishes, to pass
     * to a suspend function that takes a flow: {@code Bridge.sync(c -> uploads.store(Bridge.flow(publisher), c))}.
     *
     * <p>Each collection of the flow subscribes to the publisher once, requests elements in batches as the
     * collector takes them, and cancels its subscription when the collection ends or is cancelled; a failure the
     * publisher signals is what the collection throws. A publisher that sends {@code null} or more than was
     * requested ends the collection with {@link NullPointerException} or {@link IllegalStateException} naming the
     * rule it broke. No loop is involved: the flow is collected by whichever coroutine collects it. Built on
     * kotlinx-coroutines-jdk9 (Kotlin code calls {@code publisher.toFlow()}).
     *
     * @since 0.2
     */
    public static <T> Flow<T> flow(java.util.concurrent.Flow.Publisher<? extends T> publisher) {
        Objects.requireNonNull(publisher, "publisher must not be null");
        @SuppressWarnings("unchecked") // a publisher only hands elements out, so one of a subtype is one of T
        java.util.concurrent.Flow.Publisher<T> elements = (java.util.concurrent.Flow.Publisher<T>) publisher;
        return FlowsKt.toFlow(elements);
    }

    /**
     * Returns a call that runs blocking {@code work} on a worker thread of the default loop. See {@link
     * LoopBridge#inWorkerThread(Callable)}.
     *
     * @since 0.1
     */
    public static <T extends @Nullable Object> SuspendCall<T> inWorkerThread(Callable<? extends T> work) {
        return defaultBridge().inWorkerThread(work);
    }

    /**
     * Starts the call on the default loop as a background task and returns at once; the loop holds it until
     * it ends and reports its failure. See {@link LoopBridge#launch(SuspendCall)}.
     *
     * @since 0.1
     */
    public static BackgroundTask launch(SuspendCall<?> call) {
        return defaultBridge().launch(call);
    }

    /**
     * Registers a callback that runs exactly once when the default loop closes, at JVM exit. See
     * {@link LoopBridge#onShutdown(Runnable)}.
     *
     * @since 0.1
     */
    public static void onShutdown(Runnable callback) {
        defaultBridge().onShutdown(callback);
    }

    /**
     * Opens a {@link GatherScope} on the default loop. See {@link LoopBridge#openGather()}.
     *
     * @since 0.1
     */
    public static <T extends @Nullable Object> GatherScope<T> openGather() {
        return defaultBridge().openGather();
    }

    /**
     * Returns a Java facade over an object with suspend methods, calling them on the default loop. See {@link
     * LoopBridge#facade(Class, Object)}.
     *
     * @since 0.1
     */
    public static <F> F facade(Class<F> facadeInterface, Object suspendImplementation) {
        return defaultBridge().facade(facadeInterface, suspendImplementation);
    }

    /**
     * A facade whose blocking methods run their calls where {@code runOn} says, on the default loop. See
     * {@link LoopBridge#facade(Class, Object, RunOn)}.
     *
     * @since 0.2
     */
    public static <F> F facade(Class<F> facadeInterface, Object suspendImplementation, RunOn runOn) {
        return defaultBridge().facade(facadeInterface, suspendImplementation, runOn);
    }

    /**
     * Returns the named concurrency limits of the default loop. See {@link ConcurrencyLimits}.
     *
     * @since 0.1
     */
    public static ConcurrencyLimits limits() {
        return defaultBridge().limits();
    }

    /**
     * Returns the process-wide run-sync loop the static methods use, {@link RunSyncLoop#getDefault()}.
     *
     * @since 0.1
     */
    public static RunSyncLoop loop() {
        return RunSyncLoop.getDefault();
    }

    /**
     * Returns the operations of this class bound to {@code loop}.
     *
     * @since 0.1
     */
    public static LoopBridge on(RunSyncLoop loop) {
        Objects.requireNonNull(loop, "loop must not be null");
        return new LoopBridge(loop);
    }

    /** The bridge on the default loop, made on first use, so loading this class starts nothing. */
    private static volatile @Nullable LoopBridge cachedDefault;

    private static LoopBridge defaultBridge() {
        LoopBridge bridge = cachedDefault;
        if (bridge == null) {
            // Not a holder class: RunSyncLoop.getDefault() throws, on every use, when the default loop's settings
            // cannot be used, and a holder would turn that into ExceptionInInitializerError once and
            // NoClassDefFoundError ever after. Two threads may both make a bridge here; either one will do.
            bridge = new LoopBridge(RunSyncLoop.getDefault());
            cachedDefault = bridge;
        }
        return bridge;
    }
}
