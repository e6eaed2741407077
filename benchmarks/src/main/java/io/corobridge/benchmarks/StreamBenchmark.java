package io.corobridge.benchmarks;

import io.corobridge.Bridge;
import io.corobridge.LoopBridge;
import io.corobridge.core.RunSyncLoop;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import kotlinx.coroutines.flow.Flow;
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
 * A Java thread reads a Kotlin flow of {@code n} numbers collected on the loop: {@code Bridge.stream} against what
 * Java teams write by hand, a channel read with {@code runBlocking} per element, and the shortcut that is not a
 * stream at all, the whole flow collected into a list by one blocking call.
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@State(Scope.Benchmark)
public class StreamBenchmark {
    @Param({"10000"})
    public int n;

    private RunSyncLoop loop;
    private LoopBridge bridge;
    private Flow<Integer> numbers;

    @Setup(Level.Trial)
    public void setUp() {
        loop = RunSyncLoop.create("bench-stream");
        bridge = Bridge.on(loop);
        numbers = Baselines.numbers(n);
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        loop.close();
    }

    /** {@code Bridge.stream(flow)}, 64 ahead (the default), summed. */
    @Benchmark
    public long bridgeStream() {
        try (Stream<Integer> stream = bridge.stream(numbers)) {
            return stream.mapToLong(Integer::longValue).sum();
        }
    }

    /** {@code Bridge.stream(1, flow)}: one element ahead, so nearly every element is a hand-off. */
    @Benchmark
    public long bridgeStreamBuffer1() {
        try (Stream<Integer> stream = bridge.stream(1, numbers)) {
            return stream.mapToLong(Integer::longValue).sum();
        }
    }

    /** By hand: a channel of 64 filled on the loop, each element taken with {@code runBlocking} when not ready. */
    @Benchmark
    public long channelRunBlocking() {
        return Baselines.channelRead(loop, numbers);
    }

    /** Not streaming: {@code Bridge.sync} of {@code flow.toList()}, then summed. */
    @Benchmark
    public long syncToList() {
        List<Integer> all = bridge.sync(c -> Baselines.toList(numbers, c));
        long sum = 0;
        for (int value : all) sum += value;
        return sum;
    }
}
