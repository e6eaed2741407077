package io.corobridge.benchmarks;

import io.corobridge.Bridge;
import io.corobridge.LoopBridge;
import io.corobridge.core.ConcurrencyLimitsKt;
import io.corobridge.core.ContextCarrier;
import io.corobridge.core.ContextPropagation;
import io.corobridge.core.RunSyncLoop;
import io.corobridge.core.SuspendCall;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OperationsPerInvocation;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;

/**
 * What the features beyond the bare hand-off cost, each against its baseline in the same run: a blocking block
 * offloaded to corobridge's worker threads vs {@code withContext(Dispatchers.IO)}, an uncontended concurrency
 * limit vs a plain semaphore (suspending and blocking), and a {@code Bridge.sync} on a loop the watchdog
 * samples vs one it ignores.
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
public class FeatureCostBenchmark {
    static final int OFFLOADS = 100;
    static final Duration TIMEOUT = Duration.ofSeconds(5);

    @State(Scope.Benchmark)
    public static class Loops {
        RunSyncLoop watched;
        RunSyncLoop unwatched;
        LoopBridge watchedBridge;
        LoopBridge unwatchedBridge;
        SuspendCall<Object> immediate = c -> Fixture.ANSWER;
        SuspendCall<Integer> yieldOnce = c -> Baselines.yieldOnce(c);
        SuspendCall<Integer> workerOffloads;
        SuspendCall<Integer> ioOffloads;
        SuspendCall<Integer> limitedBlocks;
        SuspendCall<Integer> semaphoreBlocks;
        java.util.concurrent.Semaphore jucSemaphore = new java.util.concurrent.Semaphore(8);
        Answers answers = new Answers();
        SuspendCall<Integer> directAnswer;
        AnswerFacade facade;
        DualAnswers dual;

        @Setup(Level.Trial)
        public void setUp() {
            watched = RunSyncLoop.create("bench-watched");
            watched.setStallThreshold(Duration.ofMillis(100)); // the default, said out loud
            unwatched = RunSyncLoop.create("bench-unwatched");
            unwatched.setStallThreshold(null);
            watchedBridge = Bridge.on(watched);
            unwatchedBridge = Bridge.on(unwatched);
            RunSyncLoop loop = watched;
            workerOffloads = c -> Baselines.workerOffloads(loop, OFFLOADS, c);
            ioOffloads = c -> Baselines.ioOffloads(OFFLOADS, c);
            ConcurrencyLimitsKt.getLimits(watched).create("bench", 8);
            kotlinx.coroutines.sync.Semaphore permits = kotlinx.coroutines.sync.SemaphoreKt.Semaphore(8, 0);
            limitedBlocks = c -> Baselines.limitedBlocks(ConcurrencyLimitsKt.getLimits(loop), OFFLOADS, c);
            semaphoreBlocks = c -> Baselines.semaphoreBlocks(permits, OFFLOADS, c);
            directAnswer = c -> answers.answer(c);
            facade = watchedBridge.facade(AnswerFacade.class, answers);
            dual = new DualAnswers(watched);
        }

        @TearDown(Level.Trial)
        public void tearDown() {
            watched.close();
            unwatched.close();
        }
    }

    /** One blocking block run on a corobridge worker thread from a coroutine on the loop, and back. */
    @Benchmark
    @OperationsPerInvocation(OFFLOADS)
    public Object workerOffload(Loops l) {
        return l.watchedBridge.sync(l.workerOffloads);
    }

    /** The same through {@code withContext(Dispatchers.IO)}. */
    @Benchmark
    @OperationsPerInvocation(OFFLOADS)
    public Object ioOffload(Loops l) {
        return l.watchedBridge.sync(l.ioOffloads);
    }

    /** An uncontended {@code withConcurrencyLimit("bench") { }} in a coroutine on the loop, per block. */
    @Benchmark
    @OperationsPerInvocation(OFFLOADS)
    public Object limitSuspend(Loops l) {
        return l.watchedBridge.sync(l.limitedBlocks);
    }

    /** The same with a kotlinx {@code Semaphore.withPermit { }}. */
    @Benchmark
    @OperationsPerInvocation(OFFLOADS)
    public Object semaphoreSuspend(Loops l) {
        return l.watchedBridge.sync(l.semaphoreBlocks);
    }

    /** An uncontended blocking {@code acquire(timeout, "bench")} and {@code close()} on the caller's thread. */
    @Benchmark
    public Object limitBlocking(Loops l) {
        io.corobridge.core.ConcurrencyLimits.Slots slots = ConcurrencyLimitsKt.getLimits(l.watched).acquire(TIMEOUT, "bench");
        slots.close();
        return slots;
    }

    /** The same with {@code java.util.concurrent.Semaphore}. */
    @Benchmark
    public Object semaphoreBlocking(Loops l) throws InterruptedException {
        l.jucSemaphore.acquire();
        l.jucSemaphore.release();
        return l.jucSemaphore;
    }

    /** The Java face of {@link Answers}. */
    public interface AnswerFacade {
        int answer();
    }

    /** {@code Bridge.sync(c -> answers.answer(c))}: a suspend function that answers at once. */
    @Benchmark
    public Object directSync(Loops l) {
        return l.watchedBridge.sync(l.directAnswer);
    }

    /** {@code Bridge.sync(RunOn.NEW_THREAD, ..)}: a suspend function that yields once, on a thread made for the call. */
    @Benchmark
    public Object newThreadSync(Loops l) {
        return l.watchedBridge.sync(io.corobridge.core.RunOn.NEW_THREAD, l.yieldOnce);
    }

    /** Its hand-written equivalent: start a thread that runs {@code runBlocking { yieldOnce() }} and join it. */
    @Benchmark
    public Object newThreadRunBlocking(Loops l) throws InterruptedException {
        Object[] result = new Object[1];
        Thread thread = new Thread(() -> {
            try {
                result[0] = kotlinx.coroutines.BuildersKt.runBlocking(
                        kotlin.coroutines.EmptyCoroutineContext.INSTANCE, (scope, c) -> Baselines.yieldOnce(c));
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        });
        thread.start();
        thread.join();
        return result[0];
    }

    /** The same call on the caller's thread, {@code Bridge.sync(RunOn.CALLER_THREAD, ..)}: what the thread start costs. */
    @Benchmark
    public Object callerThreadSync(Loops l) {
        return l.watchedBridge.sync(io.corobridge.core.RunOn.CALLER_THREAD, l.yieldOnce);
    }

    /** The same suspend function through a facade: {@code facade.answer()}. */
    @Benchmark
    public int facadeSync(Loops l) {
        return l.facade.answer();
    }

    /**
     * The same suspend function through its asyncDispatch twin, called from a plain thread: the dispatch looks
     * at the thread (its type, and whether runBlocking runs on it) before it runs the call like {@code sync}.
     */
    @Benchmark
    public int dualDispatchSync(Loops l) {
        return l.dual.answer();
    }

    /** One context carrier registered (a thread-local holding a value on the caller), for the call below. */
    @State(Scope.Thread)
    public static class Carrying {
        final ThreadLocal<String> requestId = new ThreadLocal<>();
        final ContextCarrier<String> carrier = ContextCarrier.of(requestId);

        @Setup(Level.Trial)
        public void setUp() {
            ContextPropagation.register(carrier);
            requestId.set("request-1");
        }

        @TearDown(Level.Trial)
        public void tearDown() {
            ContextPropagation.unregister(carrier);
            requestId.remove();
        }
    }

    /** {@code Bridge.sync} of {@code c -> answers.answer(c)} carrying one thread-local value to the loop. */
    @Benchmark
    public Object syncContextCarried(Loops l, Carrying carrying) {
        return l.watchedBridge.sync(l.directAnswer);
    }

    /** {@code Bridge.sync} of a call that returns at once, on a loop the watchdog samples (every 25 ms). */
    @Benchmark
    public Object syncWatchdogOn(Loops l) {
        return l.watchedBridge.sync(l.immediate);
    }

    /** The same on a loop whose watchdog is off. */
    @Benchmark
    public Object syncWatchdogOff(Loops l) {
        return l.unwatchedBridge.sync(l.immediate);
    }
}
