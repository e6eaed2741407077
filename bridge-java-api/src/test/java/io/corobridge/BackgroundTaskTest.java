package io.corobridge;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.corobridge.core.BackgroundTask;
import io.corobridge.core.RunSyncLoop;
import io.corobridge.fixtures.UserService;
import java.io.IOException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/** {@link Bridge#launch} and {@link Bridge#onShutdown}, as a Java caller sees them. */
class BackgroundTaskTest {
    @RegisterExtension
    final TestLoops loops = new TestLoops();

    private final RunSyncLoop loop = loops.create("java-background", Duration.ZERO);
    private final LoopBridge bridge = Bridge.on(loop);
    private final UserService users = new UserService();

    @Test
    void aLaunchedTaskRunsOnTheLoopAndCompletes() throws Exception {
        BackgroundTask task = bridge.launch(c -> users.threads(c));
        assertEquals(List.of("corobridge-loop-java-background", "corobridge-loop-java-background"),
                task.completion().get(10, TimeUnit.SECONDS));
        assertTrue(task.isDone());
    }

    @Test
    void aFailingTaskIsReportedToTheFailureHandler() throws Exception {
        CompletableFuture<Throwable> reported = new CompletableFuture<>();
        loop.setFailureHandler((thread, failure) -> reported.complete(failure));
        BackgroundTask task = bridge.launch(c -> users.failChecked("lost in the background", c));
        Throwable failure = reported.get(10, TimeUnit.SECONDS);
        assertInstanceOf(IOException.class, failure);
        ExecutionException viaCompletion = assertThrows(ExecutionException.class, () -> task.completion().get(10, TimeUnit.SECONDS));
        assertSame(failure, viaCompletion.getCause());
    }

    /** An exception whose getMessage() and toString() throw, as careless code hands one over. */
    private static final class HostileException extends RuntimeException {
        private static final long serialVersionUID = 1L;

        @Override
        public String getMessage() {
            throw new IllegalStateException("getMessage() of a hostile exception");
        }

        @Override
        public String toString() {
            throw new IllegalStateException("toString() of a hostile exception");
        }
    }

    @Test
    void aFailureWhoseToStringThrowsStillCompletesTheTaskAndIsReported() throws Exception {
        CompletableFuture<Throwable> reported = new CompletableFuture<>();
        loop.setFailureHandler((thread, failure) -> reported.complete(failure));
        HostileException hostile = new HostileException();
        BackgroundTask task = bridge.launch(c -> users.fail(hostile, c));
        Throwable ended = task.completion().handle((value, failure) -> failure).get(10, TimeUnit.SECONDS);
        assertSame(hostile, ended);
        assertSame(hostile, reported.get(10, TimeUnit.SECONDS));
        CompletableFuture<String> future = bridge.async(c -> users.fail(hostile, c));
        assertSame(hostile, future.handle((value, failure) -> failure).get(10, TimeUnit.SECONDS));
        CompletableFuture<String> outside = bridge.async(c -> users.await(new CompletableFuture<>(), c));
        assertTrue(outside.completeExceptionally(new HostileException()), "completing it from outside does not throw");
    }

    @Test
    void cancelStopsTheTaskWithoutReportingAFailure() throws Exception {
        CompletableFuture<Throwable> reported = new CompletableFuture<>();
        loop.setFailureHandler((thread, failure) -> reported.complete(failure));
        CountDownLatch started = new CountDownLatch(1);
        CountDownLatch finallyRan = new CountDownLatch(1);
        BackgroundTask task = bridge.launch(c -> users.waitUntilCancelled(started::countDown, finallyRan::countDown, c));
        started.await();
        assertFalse(task.isDone());
        task.cancel();
        assertTrue(finallyRan.await(10, TimeUnit.SECONDS));
        assertThrows(CancellationException.class, () -> task.completion().join());
        bridge.sync(c -> users.load(0, c)); // completion callbacks have run
        assertFalse(reported.isDone(), "a cancellation is not a failure");
    }

    @Test
    void shutdownCallbacksRunOnceNewestFirstPastAThrowingOne() {
        RunSyncLoop own = RunSyncLoop.create("java-callbacks");
        List<String> steps = Collections.synchronizedList(new ArrayList<>());
        List<Throwable> reported = Collections.synchronizedList(new ArrayList<>());
        own.setFailureHandler((thread, failure) -> reported.add(failure));
        LoopBridge ownBridge = Bridge.on(own);
        RuntimeException broken = new RuntimeException("second callback broke");
        ownBridge.onShutdown(() -> steps.add("first registered"));
        ownBridge.onShutdown(() -> {
            throw broken;
        });
        // Debug mode (-ea) may append " @coroutine#N" to the thread's name while a coroutine runs.
        ownBridge.onShutdown(() -> steps.add("last registered on "
                + Thread.currentThread().getName().replaceAll(" @coroutine#\\d+$", "")));
        own.close();
        own.close();
        assertEquals(List.of("last registered on corobridge-loop-java-callbacks", "first registered"), steps);
        assertEquals(List.of(broken), reported);
        IllegalStateException late = assertThrows(IllegalStateException.class, () -> ownBridge.onShutdown(() -> {}));
        assertTrue(late.getMessage().contains("can no longer be registered"), late.getMessage());
        assertThrows(IllegalStateException.class, () -> ownBridge.launch(c -> users.load(1, c)));
        TestThreads.assertNone("corobridge-loop-java-callbacks");
    }

    @Test
    void nullArgumentsAreRejected() {
        NullPointerException call = assertThrows(NullPointerException.class, () -> bridge.launch(null));
        assertEquals("call must not be null", call.getMessage());
        NullPointerException callback = assertThrows(NullPointerException.class, () -> bridge.onShutdown(null));
        assertEquals("callback must not be null", callback.getMessage());
    }
}
