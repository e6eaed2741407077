package io.corobridge.benchmarks;

import io.corobridge.Bridge;
import io.corobridge.LoopBridge;
import io.corobridge.core.RunSyncLoop;
import io.corobridge.core.SuspendCall;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;

/**
 * Many trivial calls at once, from one blocking caller: {@code Bridge.gather} against what users write by
 * hand. Each runs {@code n} calls that return at once.
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@State(Scope.Benchmark)
public class GatherBenchmark {
    @Param({"1000", "10000"})
    public int n;

    private RunSyncLoop loop;
    private LoopBridge bridge;
    private ExecutorService executor;
    private List<SuspendCall<Integer>> calls;

    @Setup(Level.Trial)
    public void setUp() {
        loop = RunSyncLoop.create("bench-gather");
        bridge = Bridge.on(loop);
        executor = Executors.newSingleThreadExecutor(r -> new Thread(r, "bench-gather-executor"));
        calls = new ArrayList<>(n);
        for (int i = 0; i < n; i++) {
            Integer value = i;
            calls.add(c -> value);
        }
    }

    /** {@code Bridge.gather}: the calls run at once on the loop, results in order. */
    @Benchmark
    public Object bridgeGather() {
        return bridge.gather(calls);
    }

    /** {@code Bridge.gather(8, calls)}: at most 8 at once. */
    @Benchmark
    public Object bridgeGatherBounded8() {
        return bridge.gather(8, calls);
    }

    /** {@code Bridge.gatherSettled}: every call's outcome, in order. */
    @Benchmark
    public Object bridgeGatherSettled() {
        return bridge.gatherSettled(calls);
    }

    /** {@code Bridge.gatherSettled(8, calls)}. */
    @Benchmark
    public Object bridgeGatherSettledBounded8() {
        return bridge.gatherSettled(8, calls);
    }

    /** {@code awaitAll} with {@code runCatching} in each {@code async}: a settled gather by hand, on the loop. */
    @Benchmark
    public Object awaitAllSettledOnLoop() {
        return bridge.sync(c -> Baselines.awaitAllSettled(n, c));
    }

    /** The same with a {@code Semaphore(8)}. */
    @Benchmark
    public Object semaphoreBoundedSettled8OnLoop() {
        return bridge.sync(c -> Baselines.semaphoreBoundedSettled(n, 8, c));
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        loop.close();
        executor.shutdownNow();
    }

    /** {@code coroutineScope { map { async { } }.awaitAll() }} on the corobridge loop. */
    @Benchmark
    public Object awaitAllOnLoop() {
        return bridge.sync(c -> Baselines.awaitAll(n, c));
    }

    /** The same with at most 8 running at once, guarded by a kotlinx {@code Semaphore}. */
    @Benchmark
    public Object semaphoreBounded8OnLoop() {
        return bridge.sync(c -> Baselines.semaphoreBounded(n, 8, c));
    }

    /** {@code CompletableFuture.allOf} over {@code n} {@code supplyAsync} calls on a single-thread executor. */
    @Benchmark
    public Object allOfOnExecutor() {
        CompletableFuture<?>[] futures = new CompletableFuture<?>[n];
        for (int i = 0; i < n; i++) {
            int value = i;
            futures[i] = CompletableFuture.supplyAsync(() -> value, executor);
        }
        return CompletableFuture.allOf(futures).join();
    }
}
