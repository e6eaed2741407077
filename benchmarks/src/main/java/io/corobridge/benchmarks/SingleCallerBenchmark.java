package io.corobridge.benchmarks;

import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;

/**
 * One caller thread, one call at a time: the cost of crossing to a loop thread and back, for corobridge and
 * for what users write by hand. Compare within one run, as ratios.
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
public class SingleCallerBenchmark {
    /** The call on the caller's thread, no hand-off at all (a suspending call runs undispatched here). */
    @Benchmark
    public Object direct(Fixture f) {
        return f.suspendCall.invoke(Continuations.DISCARD);
    }

    /** {@code runBlocking { }} on the caller's own thread: an event loop, but no thread hop. */
    @Benchmark
    public Object runBlockingOnCaller(Fixture f) throws InterruptedException {
        return f.runBlockingOnCaller();
    }

    /** {@code runBlocking(singleThreadDispatcher) { }}: the usual hand-written bridge to a loop thread. */
    @Benchmark
    public Object runBlockingOnLoop(Fixture f) throws InterruptedException {
        return f.runBlockingOn(f.executorDispatcher);
    }

    /** {@code supplyAsync(f, singleThreadExecutor).join()}: a plain executor hand-off. */
    @Benchmark
    public Object supplyAsyncJoin(Fixture f) {
        return f.supplyAsyncJoin();
    }

    /** {@code scope.future(singleThreadDispatcher) { }.join()}: kotlinx's future bridge. */
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
