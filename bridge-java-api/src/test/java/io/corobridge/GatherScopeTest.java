package io.corobridge;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.corobridge.core.GatherIncompleteException;
import io.corobridge.core.GatherScope;
import io.corobridge.core.RunSyncLoop;
import io.corobridge.fixtures.UserService;
import java.io.IOException;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/** {@link GatherScope}: fork, join, handles and close. */
class GatherScopeTest {
    @RegisterExtension
    final TestLoops loops = new TestLoops();

    private final RunSyncLoop loop = loops.create("java-scope");
    private final LoopBridge bridge = Bridge.on(loop);
    private final UserService users = new UserService();

    @Test
    void handlesGiveResultsOnlyAfterJoin() {
        CompletableFuture<String> gate = new CompletableFuture<>();
        try (GatherScope<String> scope = bridge.openGather()) {
            GatherScope.Handle<String> a = scope.fork(c -> users.load(1, c));
            GatherScope.Handle<String> b = scope.fork(c -> users.await(gate, c));
            GatherIncompleteException early = assertThrows(GatherIncompleteException.class, a::get);
            assertTrue(early.getMessage().contains("join"), early.getMessage());
            gate.complete("opened");
            scope.join();
            assertEquals("user-1", a.get());
            assertEquals("opened", b.get());
            GatherScope.Handle<String> late = scope.fork(c -> users.load(3, c));
            assertThrows(GatherIncompleteException.class, late::get, "a join covers only the calls forked before it");
            scope.join();
            assertEquals("user-3", late.get());
        }
    }

    @Test
    void joinRethrowsTheFirstFailureUnchangedAndCancelsTheRest() throws Exception {
        CountDownLatch started = new CountDownLatch(2);
        CountDownLatch finallies = new CountDownLatch(2);
        IllegalStateException boom = new IllegalStateException("boom");
        try (GatherScope<String> scope = bridge.openGather()) {
            GatherScope.Handle<String> slow1 = scope.fork(c -> users.waitUntilCancelled(started::countDown, finallies::countDown, c));
            scope.fork(c -> users.waitUntilCancelled(started::countDown, finallies::countDown, c));
            started.await();
            scope.fork(c -> users.fail(boom, c));
            IllegalStateException thrown = assertThrows(IllegalStateException.class, scope::join);
            assertSame(boom, thrown);
            assertEquals(0, finallies.getCount(), "the other calls were cancelled and finished");
            IllegalStateException cancelled = assertThrows(IllegalStateException.class, slow1::get);
            assertInstanceOf(java.util.concurrent.CancellationException.class, cancelled.getCause());
        }
    }

    @Test
    void closeWaitsForWhatIsLeftAndLeavesNothingRunning() throws Exception {
        CompletableFuture<String> gate = new CompletableFuture<>();
        AtomicReference<String> seen = new AtomicReference<>();
        GatherScope<String> scope = bridge.openGather();
        scope.fork(c -> users.callBack(() -> {
            seen.set("ran");
            return "done";
        }, c));
        scope.fork(c -> users.await(gate, c));
        Thread opener = new Thread(() -> gate.complete("late"));
        opener.start();
        scope.close();
        opener.join();
        assertEquals("ran", seen.get());
        assertTrue(gate.isDone(), "close waited for the call still running");
        IllegalStateException afterClose = assertThrows(IllegalStateException.class, () -> scope.fork(c -> users.load(1, c)));
        assertTrue(afterClose.getMessage().contains("closed"), afterClose.getMessage());
        assertThrows(IllegalStateException.class, scope::join);
        scope.close(); // twice is harmless
    }

    @Test
    void closeAfterAFailureCancelsTheRestAndRethrowsIt() throws Exception {
        CountDownLatch started = new CountDownLatch(1);
        CountDownLatch finallies = new CountDownLatch(1);
        GatherScope<String> scope = bridge.openGather();
        scope.fork(c -> users.waitUntilCancelled(started::countDown, finallies::countDown, c));
        started.await();
        scope.fork(c -> users.failChecked("lost", c));
        Throwable thrown = assertThrows(Throwable.class, scope::close);
        assertInstanceOf(IOException.class, thrown, "a failure nobody joined is not swallowed");
        assertEquals(0, finallies.getCount(), "the running call was cancelled and finished");
    }

    @Test
    void interruptingJoinCancelsEveryCall() throws Exception {
        for (int round = 0; round < 20; round++) {
            interruptJoinOnce();
        }
    }

    private void interruptJoinOnce() throws Exception {
        CountDownLatch started = new CountDownLatch(3);
        CountDownLatch finallies = new CountDownLatch(3);
        GatherScope<String> scope = bridge.openGather();
        for (int i = 0; i < 3; i++) {
            scope.fork(c -> users.waitUntilCancelled(started::countDown, finallies::countDown, c));
        }
        started.await();
        AtomicReference<Throwable> thrown = new AtomicReference<>();
        Thread joiner = TestThreads.start("joiner", scope::join, thrown);
        // Interrupt only once join() waits: a thread interrupted before it calls join() does not start it.
        TestThreads.awaitParked(joiner);
        joiner.interrupt();
        joiner.join();
        assertInstanceOf(CancellationException.class, thrown.get());
        assertEquals(0, finallies.getCount(), "every call finished cancelling before join returned");
        scope.close();
    }

    @Test
    void nullCallsAndClosedLoopsAreRefused() {
        try (GatherScope<String> scope = bridge.openGather()) {
            NullPointerException thrown = assertThrows(NullPointerException.class, () -> scope.fork(null));
            // The core's own check (Kotlin's), which names the method and the parameter.
            assertTrue(thrown.getMessage().contains("GatherScope.fork, parameter call"), thrown.getMessage());
        }
        RunSyncLoop other = RunSyncLoop.create("java-scope-closed");
        other.close();
        assertThrows(IllegalStateException.class, () -> Bridge.on(other).openGather());
    }
}
