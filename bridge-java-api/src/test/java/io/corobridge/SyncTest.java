package io.corobridge;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import io.corobridge.core.RunOn;
import io.corobridge.core.RunSyncLoop;
import io.corobridge.core.SuspendCall;
import io.corobridge.fixtures.UserService;
import java.io.IOException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import kotlin.Unit;
import kotlin.coroutines.intrinsics.IntrinsicsKt;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/** {@link Bridge#sync} and {@link LoopBridge#sync}, as a Java caller sees them. */
class SyncTest {
    @RegisterExtension
    final TestLoops loops = new TestLoops();

    private final RunSyncLoop loop = loops.create("java-sync");
    private final LoopBridge bridge = Bridge.on(loop);
    private final UserService users = new UserService();

    @Test
    void returnsWhatTheSuspendFunctionReturns() {
        assertEquals("user-1", bridge.sync(c -> users.immediate(1, c)));
        assertEquals("user-2", bridge.sync(c -> users.load(2, c)));
        assertNull(bridge.sync(c -> users.missing(c)));
    }

    @Test
    void defaultLoopRunsCallsOnItsThread() {
        List<String> threads = Bridge.sync(c -> users.threads(c));
        assertEquals(List.of("corobridge-loop-default", "corobridge-loop-default"), threads);
        assertSame(RunSyncLoop.getDefault(), Bridge.loop());
    }

    @Test
    void bodyRunsOnTheLoopThreadFromItsFirstLine() {
        List<String> threads = bridge.sync(c -> users.threads(c));
        assertEquals(List.of("corobridge-loop-java-sync", "corobridge-loop-java-sync"), threads);
        String lambdaThread = bridge.sync(c -> Thread.currentThread().getName());
        assertEquals("corobridge-loop-java-sync", lambdaThread);
    }

    @Test
    void lambdaMayResumeTheContinuationItselfBeforeReturning() {
        String result = bridge.<String>sync(c -> {
            c.resumeWith("resumed inline");
            return IntrinsicsKt.getCOROUTINE_SUSPENDED();
        });
        assertEquals("resumed inline", result);
        String later = bridge.<String>sync(c -> {
            new Thread(() -> c.resumeWith("resumed elsewhere"), "resumer").start();
            return IntrinsicsKt.getCOROUTINE_SUSPENDED();
        });
        assertEquals("resumed elsewhere", later);
    }

    @Test
    void checkedExceptionsCrossUnchangedWithTheCallersFramesAttached() {
        Throwable thrown = assertThrows(Throwable.class, () -> bridge.sync(c -> users.failChecked("disk gone", c)));
        IOException io = assertInstanceOf(IOException.class, thrown, "the checked exception itself, not wrapped");
        assertEquals("disk gone", io.getMessage());
        Throwable callerSide = Arrays.stream(io.getSuppressed())
                .filter(s -> s instanceof io.corobridge.core.CalledFrom)
                .findFirst()
                .orElseThrow(() -> new AssertionError("no caller frames attached"));
        assertTrue(Arrays.stream(callerSide.getStackTrace()).anyMatch(f -> f.getClassName().equals(SyncTest.class.getName())));
        assertTrue(Arrays.stream(io.getStackTrace()).anyMatch(f -> f.getClassName().equals(UserService.class.getName())),
                "the loop side of the trace is kept");
    }

    @Test
    void uncheckedExceptionsAndErrorsAreTheSameInstance() {
        IllegalArgumentException bad = new IllegalArgumentException("bad id");
        assertSame(bad, assertThrows(IllegalArgumentException.class, () -> bridge.sync(c -> users.fail(bad, c))));
        StackOverflowError error = new StackOverflowError("deep");
        assertSame(error, assertThrows(StackOverflowError.class, () -> bridge.sync(c -> users.fail(error, c))));
        RuntimeException direct = new RuntimeException("thrown by the lambda itself");
        assertSame(direct, assertThrows(RuntimeException.class, () -> bridge.sync(c -> {
            throw direct;
        })));
        assertEquals("user-3", bridge.sync(c -> users.load(3, c)), "the loop keeps serving");
    }

    @Test
    void aHundredCallersInterleaveOnTheLoop() throws Exception {
        for (int round = 0; round < 5; round++) {
            int callers = 100;
            CompletableFuture<String> gate = new CompletableFuture<>();
            AtomicInteger waiting = new AtomicInteger();
            List<String> results = Collections.synchronizedList(new ArrayList<>());
            AtomicReference<Throwable> failure = new AtomicReference<>();
            List<Thread> threads = new ArrayList<>();
            for (int i = 0; i < callers; i++) {
                int id = i;
                threads.add(TestThreads.start("caller-" + i, () -> results.add(bridge.sync(c -> {
                    // All hundred must be suspended on the gate at once before any can finish.
                    if (waiting.incrementAndGet() == callers) {
                        gate.complete("open");
                    }
                    return users.await(gate.thenApply(g -> g + "-" + id), c);
                })), failure));
            }
            for (Thread t : threads) {
                t.join();
            }
            if (failure.get() != null) {
                fail(failure.get());
            }
            assertEquals(callers, results.size());
            assertTrue(results.contains("open-0") && results.contains("open-99"));
        }
    }

    @Test
    void interruptCancelsTheCallWaitsForItsFinallyAndKeepsTheFlag() throws Exception {
        for (int round = 0; round < 20; round++) {
            CountDownLatch started = new CountDownLatch(1);
            AtomicBoolean finallyDone = new AtomicBoolean();
            AtomicBoolean finallyAtReturn = new AtomicBoolean();
            AtomicBoolean flagAtReturn = new AtomicBoolean();
            AtomicReference<Throwable> thrown = new AtomicReference<>();
            Thread caller = TestThreads.start("interrupted-caller", () -> {
                try {
                    bridge.sync(c -> users.waitUntilCancelled(started::countDown, () -> {
                        Thread.yield();
                        finallyDone.set(true);
                    }, c));
                } finally {
                    finallyAtReturn.set(finallyDone.get());
                    flagAtReturn.set(Thread.currentThread().isInterrupted());
                }
            }, thrown);
            started.await();
            caller.interrupt();
            caller.join();
            assertInstanceOf(CancellationException.class, thrown.get());
            assertTrue(finallyAtReturn.get(), "the call's finally ran before sync returned");
            assertTrue(flagAtReturn.get(), "the interrupt flag is set again");
        }
    }

    @Test
    void timeoutCancelsTheCallAndThrowsTimeoutException() throws Exception {
        AtomicBoolean bodyStarted = new AtomicBoolean();
        AtomicBoolean finallyDone = new AtomicBoolean();
        TimeoutException timeout = assertThrows(TimeoutException.class, () -> bridge.sync(Duration.ofMillis(50),
                c -> users.waitUntilCancelled(() -> bodyStarted.set(true), () -> finallyDone.set(true), c)));
        assertTrue(timeout.getMessage().contains("\"java-sync\""), timeout.getMessage());
        // A call still queued at the deadline never starts; one that started ran its finally before the throw.
        assertEquals(bodyStarted.get(), finallyDone.get(), "the call's finally ran if and only if it started");
        assertEquals("user-4", bridge.sync(Duration.ofSeconds(10), c -> users.load(4, c)));
        assertEquals("user-5", Bridge.sync(Duration.ofSeconds(10), c -> users.load(5, c)));
    }

    @Test
    void badInputIsRejectedAtTheBoundary() {
        NullPointerException nullCall = assertThrows(NullPointerException.class, () -> bridge.sync(null));
        assertEquals("call must not be null", nullCall.getMessage());
        assertThrows(NullPointerException.class, () -> Bridge.sync(null));
        assertThrows(NullPointerException.class, () -> bridge.sync(Duration.ofSeconds(1), null));
        NullPointerException nullTimeout = assertThrows(NullPointerException.class,
                () -> bridge.sync((Duration) null, c -> Unit.INSTANCE));
        assertEquals("timeout must not be null", nullTimeout.getMessage());
        IllegalArgumentException zero = assertThrows(IllegalArgumentException.class,
                () -> bridge.sync(Duration.ZERO, c -> Unit.INSTANCE));
        assertTrue(zero.getMessage().contains("timeout must be positive"), zero.getMessage());
        assertThrows(IllegalArgumentException.class, () -> bridge.sync(Duration.ofMillis(-5), c -> Unit.INSTANCE));
        assertThrows(NullPointerException.class, () -> Bridge.on(null));
        assertThrows(NullPointerException.class, () -> RunSyncLoop.create(null));
        assertThrows(IllegalArgumentException.class, () -> RunSyncLoop.create(""));
    }

    @Test
    void onTheCallersThreadTheCallRunsThereAndKeepsEveryOtherPromise() throws Exception {
        String me = Thread.currentThread().getName();
        assertEquals(List.of(me, me), bridge.sync(RunOn.CALLER_THREAD, c -> users.threads(c)),
                "first line and the step after a suspension both on the calling thread");
        assertEquals(List.of("corobridge-loop-java-sync", "corobridge-loop-java-sync"),
                bridge.sync(RunOn.LOOP, c -> users.threads(c)));

        Throwable thrown = assertThrows(Throwable.class,
                () -> bridge.sync(RunOn.CALLER_THREAD, c -> users.failChecked("disk gone", c)));
        IOException io = assertInstanceOf(IOException.class, thrown, "the checked exception itself, not wrapped");
        assertTrue(Arrays.stream(io.getSuppressed()).anyMatch(s -> s instanceof io.corobridge.core.CalledFrom));

        CompletableFuture<String> never = new CompletableFuture<>();
        TimeoutException timeout = assertThrows(TimeoutException.class,
                () -> bridge.sync(RunOn.CALLER_THREAD, Duration.ofMillis(50), c -> users.await(never, c)));
        assertTrue(timeout.getMessage().contains("PT0.05S"), timeout.getMessage());
        assertEquals("user-4", bridge.sync(RunOn.CALLER_THREAD, Duration.ofSeconds(30), c -> users.load(4, c)));
        assertEquals("user-5", Bridge.sync(RunOn.CALLER_THREAD, c -> users.load(5, c)));
        assertEquals("user-6", Bridge.sync(RunOn.LOOP, Duration.ofSeconds(30), c -> users.load(6, c)));
    }

    @Test
    void onANewThreadTheCallRunsThereAndKeepsEveryOtherPromise() throws Exception {
        List<String> threads = bridge.sync(RunOn.NEW_THREAD, c -> users.threads(c));
        assertEquals(threads.get(0), threads.get(1), "first line and the step after a suspension on one thread");
        assertTrue(threads.get(0).startsWith("corobridge-loop-java-sync-call-"), threads.toString());

        Throwable thrown = assertThrows(Throwable.class,
                () -> bridge.sync(RunOn.NEW_THREAD, c -> users.failChecked("disk gone", c)));
        IOException io = assertInstanceOf(IOException.class, thrown, "the checked exception itself, not wrapped");
        assertTrue(Arrays.stream(io.getSuppressed()).anyMatch(s -> s instanceof io.corobridge.core.CalledFrom
                && ((io.corobridge.core.CalledFrom) s).getThreadName().equals(Thread.currentThread().getName())));

        CompletableFuture<String> never = new CompletableFuture<>();
        assertThrows(TimeoutException.class,
                () -> bridge.sync(RunOn.NEW_THREAD, Duration.ofMillis(50), c -> users.await(never, c)));
        assertEquals("user-7", Bridge.sync(RunOn.NEW_THREAD, c -> users.load(7, c)));
    }

    @Test
    void onTheCallersThreadBadArgumentsAreNamed() {
        NullPointerException runOn = assertThrows(NullPointerException.class,
                () -> bridge.sync((RunOn) null, c -> Unit.INSTANCE));
        assertEquals("runOn must not be null", runOn.getMessage());
        NullPointerException call = assertThrows(NullPointerException.class,
                () -> bridge.sync(RunOn.CALLER_THREAD, (SuspendCall<Object>) null));
        assertEquals("call must not be null", call.getMessage());
        NullPointerException timeout = assertThrows(NullPointerException.class,
                () -> bridge.sync(RunOn.CALLER_THREAD, (Duration) null, c -> Unit.INSTANCE));
        assertEquals("timeout must not be null", timeout.getMessage());
        IllegalArgumentException zero = assertThrows(IllegalArgumentException.class,
                () -> bridge.sync(RunOn.CALLER_THREAD, Duration.ZERO, c -> Unit.INSTANCE));
        assertTrue(zero.getMessage().contains("timeout must be positive"), zero.getMessage());
    }
}
