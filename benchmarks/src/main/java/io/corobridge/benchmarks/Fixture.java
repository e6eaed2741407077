package io.corobridge.benchmarks;

import io.corobridge.Bridge;
import io.corobridge.LoopBridge;
import io.corobridge.core.RunSyncLoop;
import io.corobridge.core.SuspendCall;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import kotlin.coroutines.CoroutineContext;
import kotlin.coroutines.EmptyCoroutineContext;
import kotlin.jvm.functions.Function2;
import kotlinx.coroutines.BuildersKt;
import kotlinx.coroutines.CoroutineDispatcher;
import kotlinx.coroutines.CoroutineScope;
import kotlinx.coroutines.CoroutineScopeKt;
import kotlinx.coroutines.CoroutineStart;
import kotlinx.coroutines.ExecutorsKt;
import kotlinx.coroutines.future.FutureKt;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;

/**
 * What the one-call benchmarks share: a corobridge loop, and the single-thread executor (also as a coroutine
 * dispatcher) that users would otherwise write, plus the call under test in each shape.
 *
 * <p>{@code call}: {@code immediate} returns at once; {@code suspendOnce} calls a Kotlin suspend function that
 * suspends once ({@link Baselines#yieldOnce}) and is resumed by the loop it runs on. For the executor baseline, "suspending once" is a second hop through the
 * executor ({@code thenApplyAsync}).
 */
@State(Scope.Benchmark)
public class Fixture {
    static final Integer ANSWER = 42;

    @Param({"immediate", "suspendOnce"})
    public String call;

    RunSyncLoop loop;
    LoopBridge bridge;
    ExecutorService executor;
    CoroutineDispatcher executorDispatcher;
    CoroutineScope executorScope;
    SuspendCall<Object> suspendCall;
    Function2<CoroutineScope, kotlin.coroutines.Continuation<? super Object>, Object> coroutineBody;
    boolean suspending;

    @Setup(Level.Trial)
    public void setUp() {
        // JMH runs the trial's teardown inside the last iteration, and -prof gc counts what it allocates there as
        // the calls'. A loop's first close loads the closing code's classes (several MB of class files read, about
        // 17 B per call of a 200 ms iteration), which no later close pays: close one loop here first.
        try (RunSyncLoop rehearsal = RunSyncLoop.create("bench-rehearsal")) {
            Bridge.on(rehearsal).sync(c -> ANSWER);
        }
        loop = RunSyncLoop.create("bench");
        bridge = Bridge.on(loop);
        executor = Executors.newSingleThreadExecutor(r -> new Thread(r, "bench-executor"));
        executorDispatcher = ExecutorsKt.from(executor);
        executorScope = CoroutineScopeKt.CoroutineScope(executorDispatcher);
        suspending = call.equals("suspendOnce");
        if (suspending) {
            suspendCall = c -> Baselines.yieldOnce(c);
            coroutineBody = (scope, c) -> Baselines.yieldOnce(c);
        } else {
            suspendCall = c -> ANSWER;
            coroutineBody = (scope, c) -> ANSWER;
        }
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        loop.close();
        executor.shutdownNow();
    }

    Object runBlockingOn(CoroutineContext context) throws InterruptedException {
        return BuildersKt.runBlocking(context, coroutineBody);
    }

    Object runBlockingOnCaller() throws InterruptedException {
        return runBlockingOn(EmptyCoroutineContext.INSTANCE);
    }

    Object supplyAsyncJoin() {
        CompletableFuture<Integer> first = CompletableFuture.supplyAsync(() -> ANSWER, executor);
        return (suspending ? first.thenApplyAsync(x -> x, executor) : first).join();
    }

    Object futureOnLoopJoin() {
        return FutureKt.future(executorScope, EmptyCoroutineContext.INSTANCE, CoroutineStart.DEFAULT, coroutineBody)
                .join();
    }
}
