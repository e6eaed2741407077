package io.corobridge;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.corobridge.core.Outcome;
import io.corobridge.core.RunSyncLoop;
import io.corobridge.core.SuspendCall;
import io.corobridge.fixtures.UserService;
import java.io.IOException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/** {@link Bridge#gatherSettled} and its future twin: every call runs to its end, each outcome returned. */
class GatherSettledTest {
    @RegisterExtension
    final TestLoops loops = new TestLoops();

    private final RunSyncLoop loop = loops.create("java-settled");
    private final LoopBridge bridge = Bridge.on(loop);
    private final UserService users = new UserService();

    @Test
    void aFailureCancelsNothingAndEveryOutcomeComesBackInCallOrder() throws Exception {
        for (int round = 0; round < 10; round++) {
            IOException failure = new IOException("disk gone");
            CompletableFuture<String> gate = new CompletableFuture<>();
            List<SuspendCall<String>> calls = List.of(
                    c -> users.await(gate, c),                   // still waiting when the next call fails
                    c -> users.fail(failure, c),
                    c -> users.callBack(() -> { gate.complete("late"); return "x"; }, c),
                    c -> users.missing(c));
            List<Outcome<String>> outcomes = bridge.gatherSettled(calls);
            assertEquals(Arrays.asList("late", null, "x", null), outcomes.stream().map(Outcome::getOrNull).toList());
            assertSame(failure, outcomes.get(1).exceptionOrNull(), "the checked exception itself");
            assertTrue(outcomes.get(3).isSuccess(), "a null result is a success");
            Throwable rethrown = assertThrows(Throwable.class, () -> outcomes.get(1).getOrThrow());
            assertSame(failure, rethrown);
        }
    }

    @Test
    void theFutureTwinIsBoundedAndCompletesWithEveryOutcome() throws Exception {
        List<SuspendCall<String>> calls = new ArrayList<>();
        for (int i = 0; i < 10; i++) {
            int id = i;
            calls.add(id % 2 == 0 ? c -> users.load(id, c) : c -> users.failChecked("no " + id, c));
        }
        List<Outcome<String>> outcomes = bridge.gatherSettledAsync(3, calls).get();
        for (int i = 0; i < 10; i++) {
            Outcome<String> outcome = outcomes.get(i);
            if (i % 2 == 0) assertEquals("user-" + i, outcome.getOrThrow());
            else assertEquals("no " + i, outcome.exceptionOrNull().getMessage());
        }
    }

    @Test
    void cancellingTheFutureCancelsEveryRunningCall() throws Exception {
        CountDownLatch started = new CountDownLatch(3);
        CountDownLatch finallies = new CountDownLatch(3);
        List<SuspendCall<String>> calls = new ArrayList<>();
        for (int i = 0; i < 3; i++) {
            calls.add(c -> users.waitUntilCancelled(started::countDown, finallies::countDown, c));
        }
        CompletableFuture<List<Outcome<String>>> future = Bridge.on(loop).gatherSettledAsync(calls);
        started.await();
        future.cancel(false);
        finallies.await();
        assertTrue(future.isCancelled());
    }

    @Test
    void badArgumentsAreNamed() {
        List<SuspendCall<String>> withNull = new ArrayList<>();
        withNull.add(c -> users.load(1, c));
        withNull.add(null);
        NullPointerException npe = assertThrows(NullPointerException.class, () -> bridge.gatherSettled(withNull));
        assertEquals("calls[1] must not be null", npe.getMessage());
        IllegalArgumentException iae = assertThrows(IllegalArgumentException.class,
                () -> bridge.gatherSettled(0, List.<SuspendCall<String>>of(c -> users.load(1, c))));
        assertEquals("maxConcurrency must be at least 1, was 0", iae.getMessage());
    }
}
