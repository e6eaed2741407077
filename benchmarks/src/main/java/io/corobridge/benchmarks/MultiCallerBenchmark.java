package io.corobridge.benchmarks;

import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;

/**
 * Several caller threads (JMH's {@code -t}: 2, 4 and 8 in the suite) sharing one loop, each making one call at
 * a time: throughput and latency under contention, on a machine with fewer cores than callers.
 */
@BenchmarkMode({Mode.Throughput, Mode.AverageTime})
@OutputTimeUnit(TimeUnit.MICROSECONDS)
public class MultiCallerBenchmark {
    @Benchmark
    public Object runBlockingOnLoop(Fixture f) throws InterruptedException {
        return f.runBlockingOn(f.executorDispatcher);
    }

    @Benchmark
    public Object supplyAsyncJoin(Fixture f) {
        return f.supplyAsyncJoin();
    }

    @Benchmark
    public Object futureOnLoopJoin(Fixture f) {
        return f.futureOnLoopJoin();
    }

    @Benchmark
    public Object bridgeSync(Fixture f) {
        return f.bridge.sync(f.suspendCall);
    }

    @Benchmark
    public Object bridgeAsyncJoin(Fixture f) {
        return f.bridge.async(f.suspendCall).join();
    }
}
