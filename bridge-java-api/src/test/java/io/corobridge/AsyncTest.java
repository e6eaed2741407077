package io.corobridge;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.corobridge.core.RunSyncLoop;
import io.corobridge.fixtures.UserService;
import java.io.IOException;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicBoolean;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/** {@link Bridge#async} and {@link LoopBridge#async}. */
class AsyncTest {
    @RegisterExtension
    final TestLoops loops = new TestLoops();

    private final RunSyncLoop loop = loops.create("java-async");
    private final LoopBridge bridge = Bridge.on(loop);
    private final UserService users = new UserService();

    @Test
    void futureCompletesWithTheResult() throws Exception {
        assertEquals("user-1", bridge.async(c -> users.load(1, c)).get(10, TimeUnit.SECONDS));
        assertEquals("user-2", Bridge.async(c -> users.immediate(2, c)).get(10, TimeUnit.SECONDS));
    }

    @Test
    void futureCompletesOnTheLoopThreadSoDependentStagesRunThere() throws Exception {
        CompletableFuture<String> gate = new CompletableFuture<>();
        CompletableFuture<String> stageThread = bridge.async(c -> users.await(gate, c))
                .thenApply(user -> Thread.currentThread().getName());
        gate.complete("open");
        assertEquals("corobridge-loop-java-async", stageThread.get(10, TimeUnit.SECONDS));
    }

    @Test
    void futureFailsWithTheExceptionUnwrapped() {
        CompletableFuture<String> future = bridge.async(c -> users.failChecked("no", c));
        ExecutionException viaGet = assertThrows(ExecutionException.class, () -> future.get(10, TimeUnit.SECONDS));
        assertInstanceOf(IOException.class, viaGet.getCause());
        CompletionException viaJoin = assertThrows(CompletionException.class, future::join);
        assertSame(viaGet.getCause(), viaJoin.getCause());
    }

    @Test
    void cancellingTheFutureCancelsTheRunningCall() throws Exception {
        for (int round = 0; round < 20; round++) {
            CountDownLatch started = new CountDownLatch(1);
            CountDownLatch finallyRan = new CountDownLatch(1);
            CompletableFuture<String> future =
                    bridge.async(c -> users.waitUntilCancelled(started::countDown, finallyRan::countDown, c));
            started.await();
            assertTrue(future.cancel(true));
            assertTrue(finallyRan.await(10, TimeUnit.SECONDS), "the coroutine was cancelled");
            assertThrows(CancellationException.class, future::join);
        }
    }

    @Test
    void cancellingTheFutureBeforeTheCallRunsMeansItNeverRuns() throws Exception {
        CountDownLatch loopBusy = new CountDownLatch(1);
        CountDownLatch release = new CountDownLatch(1);
        // Occupy the loop thread on purpose, so the next call stays queued behind it.
        CompletableFuture<Object> blocker = bridge.async(c -> {
            loopBusy.countDown();
            TestThreads.await(release);
            return "released";
        });
        loopBusy.await();
        AtomicBoolean ran = new AtomicBoolean();
        CompletableFuture<Object> queued = bridge.async(c -> {
            ran.set(true);
            return "ran";
        });
        assertTrue(queued.cancel(false));
        release.countDown();
        assertEquals("released", blocker.get(10, TimeUnit.SECONDS));
        bridge.sync(c -> users.load(0, c)); // everything queued before this has run
        assertFalse(ran.get(), "the cancelled call never started");
    }

    @Test
    void orTimeoutCancelsTheCall() throws Exception {
        CountDownLatch finallyRan = new CountDownLatch(1);
        CompletableFuture<String> future = bridge.<String>async(c -> users.waitUntilCancelled(() -> {}, finallyRan::countDown, c))
                .orTimeout(20, TimeUnit.MILLISECONDS);
        ExecutionException thrown = assertThrows(ExecutionException.class, () -> future.get(10, TimeUnit.SECONDS));
        assertInstanceOf(TimeoutException.class, thrown.getCause());
        assertTrue(finallyRan.await(10, TimeUnit.SECONDS));
    }

    @Test
    void joiningOnTheLoopThreadFailsInsteadOfDeadlocking() {
        IllegalStateException thrown = assertThrows(IllegalStateException.class,
                () -> bridge.sync(c -> users.callBack(() -> bridge.async(c2 -> users.load(1, c2)).join(), c)));
        assertTrue(thrown.getMessage().contains("would deadlock"), thrown.getMessage());
    }

    @Test
    void nullCallIsRejected() {
        NullPointerException thrown = assertThrows(NullPointerException.class, () -> bridge.async(null));
        assertEquals("call must not be null", thrown.getMessage());
        assertThrows(NullPointerException.class, () -> Bridge.async(null));
    }
}
