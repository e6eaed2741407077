package io.corobridge;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.corobridge.core.RunSyncLoop;
import io.corobridge.core.SuspendCall;
import io.corobridge.fixtures.UserService;
import java.io.IOException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/** {@link Bridge#gather} and friends, as a Java caller sees them. */
class GatherTest {
    @RegisterExtension
    final TestLoops loops = new TestLoops();

    private final RunSyncLoop loop = loops.create("java-gather");
    private final LoopBridge bridge = Bridge.on(loop);
    private final UserService users = new UserService();

    @Test
    void resultsComeInCallOrderWithNulls() {
        List<SuspendCall<String>> calls = List.of(c -> users.load(1, c), c -> users.missing(c), c -> users.immediate(3, c));
        assertEquals(Arrays.asList("user-1", null, "user-3"), bridge.gather(calls));
        assertEquals(List.of("user-4"), Bridge.gather(List.<SuspendCall<String>>of(c -> users.load(4, c))));
    }

    @Test
    void theFirstFailureCancelsTheOthersAndIsRethrownUnchanged() throws Exception {
        CountDownLatch started = new CountDownLatch(3);
        CountDownLatch finallies = new CountDownLatch(3);
        CompletableFuture<String> trigger = new CompletableFuture<>();
        List<SuspendCall<String>> calls = new ArrayList<>();
        for (int i = 0; i < 3; i++) {
            calls.add(c -> users.waitUntilCancelled(started::countDown, finallies::countDown, c));
        }
        calls.add(c -> users.await(trigger.thenCompose(x -> CompletableFuture.failedFuture(new IOException("disk gone"))), c));
        Thread opener = new Thread(() -> {
            TestThreads.await(started);
            trigger.complete("go");
        });
        opener.start();
        Throwable thrown = assertThrows(Throwable.class, () -> bridge.gather(calls));
        opener.join();
        IOException io = assertInstanceOf(IOException.class, thrown, "the checked exception itself");
        assertEquals("disk gone", io.getMessage());
        assertEquals(0, finallies.getCount(), "every sibling was cancelled and finished before gather returned");
        assertTrue(Arrays.stream(io.getSuppressed()).noneMatch(s -> s instanceof CancellationException));
    }

    @Test
    void aBoundOf8Over10000CallsNeverHasMoreThan8InFlight() {
        AtomicInteger inFlight = new AtomicInteger();
        AtomicInteger most = new AtomicInteger();
        List<SuspendCall<String>> calls = new ArrayList<>();
        for (int i = 0; i < 10_000; i++) {
            int id = i;
            calls.add(c -> users.tracked(() -> most.accumulateAndGet(inFlight.incrementAndGet(), Math::max),
                    inFlight::decrementAndGet, "user-" + id, c));
        }
        List<String> results = bridge.gather(8, calls);
        assertEquals(10_000, results.size());
        assertEquals("user-9999", results.get(9_999));
        assertEquals(8, most.get(), "the bound was reached and never passed");
    }

    @Test
    void cancellingTheFutureCancelsEveryCall() throws Exception {
        CountDownLatch started = new CountDownLatch(10);
        CountDownLatch finallies = new CountDownLatch(10);
        List<SuspendCall<String>> calls = new ArrayList<>();
        for (int i = 0; i < 10; i++) {
            calls.add(c -> users.waitUntilCancelled(started::countDown, finallies::countDown, c));
        }
        CompletableFuture<List<String>> future = bridge.gatherAsync(calls);
        started.await();
        assertTrue(future.cancel(true));
        assertTrue(finallies.await(10, TimeUnit.SECONDS), "every call was cancelled");
    }

    @Test
    void interruptingTheCallerCancelsEveryCall() throws Exception {
        CountDownLatch started = new CountDownLatch(10);
        CountDownLatch finallies = new CountDownLatch(10);
        List<SuspendCall<String>> calls = new ArrayList<>();
        for (int i = 0; i < 10; i++) {
            calls.add(c -> users.waitUntilCancelled(started::countDown, finallies::countDown, c));
        }
        AtomicReference<Throwable> thrown = new AtomicReference<>();
        Thread caller = TestThreads.start("gather-caller", () -> bridge.gather(calls), thrown);
        started.await();
        caller.interrupt();
        caller.join();
        assertInstanceOf(CancellationException.class, thrown.get());
        assertEquals(0, finallies.getCount(), "every call finished cancelling before gather returned");
    }

    @Test
    void gatherAsyncCompletesWithTheResults() throws Exception {
        List<SuspendCall<String>> calls = List.of(c -> users.load(1, c), c -> users.load(2, c));
        assertEquals(List.of("user-1", "user-2"), bridge.gatherAsync(calls).get(10, TimeUnit.SECONDS));
        assertEquals(List.of("user-1", "user-2"), bridge.gatherAsync(1, calls).get(10, TimeUnit.SECONDS));
        assertEquals(List.of("user-1", "user-2"), Bridge.gatherAsync(calls).get(10, TimeUnit.SECONDS));
    }

    @Test
    void badInputIsRejectedAtTheBoundary() {
        NullPointerException nullList = assertThrows(NullPointerException.class, () -> bridge.gather(null));
        assertEquals("calls must not be null", nullList.getMessage());
        List<SuspendCall<String>> withNull = Arrays.asList(c -> users.load(1, c), null);
        NullPointerException nullElement = assertThrows(NullPointerException.class, () -> bridge.gather(withNull));
        assertEquals("calls[1] must not be null", nullElement.getMessage());
        assertThrows(NullPointerException.class, () -> bridge.gatherAsync(withNull));
        List<SuspendCall<String>> one = List.of(c -> users.load(1, c));
        IllegalArgumentException zero = assertThrows(IllegalArgumentException.class, () -> bridge.gather(0, one));
        assertEquals("maxConcurrency must be at least 1, was 0", zero.getMessage());
        assertThrows(IllegalArgumentException.class, () -> Bridge.gather(-1, one));
    }
}
