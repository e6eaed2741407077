package io.corobridge;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.corobridge.core.RunSyncLoop;
import io.corobridge.fixtures.UserService;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import kotlin.coroutines.EmptyCoroutineContext;
import org.junit.jupiter.api.Test;

/** Closing a loop, and failures on the loop thread, as Java callers see them. */
class LifecycleTest {
    private final UserService users = new UserService();

    @Test
    void closeReleasesEveryCallerInFlightAndEndsTheThread() throws Exception {
        RunSyncLoop loop = RunSyncLoop.create("java-close");
        LoopBridge bridge = Bridge.on(loop);
        int callers = 10;
        CountDownLatch started = new CountDownLatch(callers + 1);
        CountDownLatch finallies = new CountDownLatch(callers + 1);
        List<AtomicReference<Throwable>> outcomes = new ArrayList<>();
        List<Thread> threads = new ArrayList<>();
        for (int i = 0; i < callers; i++) {
            AtomicReference<Throwable> thrown = new AtomicReference<>();
            outcomes.add(thrown);
            threads.add(TestThreads.start("closing-caller-" + i,
                    () -> bridge.sync(c -> users.waitUntilCancelled(started::countDown, finallies::countDown, c)), thrown));
        }
        CompletableFuture<String> future =
                bridge.async(c -> users.waitUntilCancelled(started::countDown, finallies::countDown, c));
        started.await();
        loop.close();
        for (Thread t : threads) {
            t.join();
        }
        assertEquals(0, finallies.getCount(), "every call finished cancelling");
        for (AtomicReference<Throwable> thrown : outcomes) {
            CancellationException e = assertInstanceOf(CancellationException.class, thrown.get());
            assertTrue(e.getMessage().contains("\"java-close\" closed"), e.getMessage());
        }
        assertThrows(CancellationException.class, future::join);
        TestThreads.assertNone("corobridge-loop-java-close");
    }

    @Test
    void callsAfterCloseAreRefused() {
        RunSyncLoop loop = RunSyncLoop.create("java-closed");
        LoopBridge bridge = Bridge.on(loop);
        assertEquals("user-1", bridge.sync(c -> users.load(1, c)));
        loop.close();
        IllegalStateException sync = assertThrows(IllegalStateException.class, () -> bridge.sync(c -> users.load(2, c)));
        assertTrue(sync.getMessage().contains("loop \"java-closed\" is closed"), sync.getMessage());
        assertThrows(IllegalStateException.class, () -> bridge.async(c -> users.load(3, c)));
        TestThreads.assertNone("corobridge-loop-java-closed");
    }

    @Test
    void anErrorOnTheLoopThreadIsReportedAndTheLoopKeepsServing() throws Exception {
        try (RunSyncLoop loop = RunSyncLoop.create("java-error")) {
            CompletableFuture<Throwable> reported = new CompletableFuture<>();
            loop.setFailureHandler((thread, failure) -> reported.complete(failure));
            AssertionError boom = new AssertionError("escaped onto the loop");
            loop.getDispatcher().dispatch(EmptyCoroutineContext.INSTANCE, () -> {
                throw boom;
            });
            assertSame(boom, reported.get(10, TimeUnit.SECONDS));
            assertEquals("user-1", Bridge.on(loop).sync(c -> users.load(1, c)));
        }
        TestThreads.assertNone("corobridge-loop-java-error");
    }

    @Test
    void theDefaultLoopCannotBeClosedByHand() {
        IllegalStateException thrown = assertThrows(IllegalStateException.class, () -> Bridge.loop().close());
        assertTrue(thrown.getMessage().contains("RunSyncLoop.create"), thrown.getMessage());
        assertFalse(Bridge.loop().isClosed());
    }
}
