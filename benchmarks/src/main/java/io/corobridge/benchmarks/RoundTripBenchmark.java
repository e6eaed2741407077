package io.corobridge.benchmarks;

import io.corobridge.Bridge;
import io.corobridge.LoopBridge;
import io.corobridge.SuspendCall;
import io.corobridge.core.RunSyncLoop;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import kotlin.coroutines.Continuation;
import kotlin.coroutines.CoroutineContext;
import kotlin.coroutines.EmptyCoroutineContext;
import kotlinx.coroutines.BuildersKt;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

/**
 * One caller, one call that returns at once: the cost of crossing to a loop thread and back, for corobridge
 * and for the code users write by hand. Compare the scores as ratios within one run.
 *
 * <p>Run: {@code java -jar benchmarks/target/benchmarks.jar RoundTrip -prof gc}
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(1)
@State(Scope.Benchmark)
public class RoundTripBenchmark {
    private static final Integer ANSWER = 42;
    private static final SuspendCall<Integer> CALL = c -> ANSWER;
    private static final Continuation<Object> DISCARD = new Continuation<>() {
        @Override
        public CoroutineContext getContext() {
            return EmptyCoroutineContext.INSTANCE;
        }

        @Override
        public void resumeWith(Object result) {}
    };

    private RunSyncLoop loop;
    private LoopBridge bridge;
    private ExecutorService singleThread;

    @Setup(Level.Trial)
    public void setUp() {
        loop = RunSyncLoop.create("bench");
        bridge = Bridge.on(loop);
        singleThread = Executors.newSingleThreadExecutor();
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        loop.close();
        singleThread.shutdownNow();
    }

    /** The call itself, on the caller's thread: the floor. */
    @Benchmark
    public Object direct() {
        return CALL.invoke(DISCARD);
    }

    /** {@code runBlocking(loop.dispatcher) { ... }}: the usual hand-written bridge. */
    @Benchmark
    public Object runBlockingOnLoop() throws InterruptedException {
        return BuildersKt.runBlocking(loop.getDispatcher(), (scope, c) -> ANSWER);
    }

    /** A plain executor hand-off: {@code supplyAsync(..., singleThread).join()}. */
    @Benchmark
    public Object supplyAsyncJoin() {
        return CompletableFuture.supplyAsync(() -> ANSWER, singleThread).join();
    }

    @Benchmark
    public Object bridgeSync() {
        return bridge.sync(CALL);
    }

    @Benchmark
    public Object bridgeAsyncJoin() {
        return bridge.async(CALL).join();
    }
}
