package io.corobridge;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.corobridge.core.BackgroundTask;
import io.corobridge.core.ConcurrencyLimitTimeoutException;
import io.corobridge.core.ConcurrencyLimits;
import io.corobridge.core.ConcurrencyLimitsKt;
import io.corobridge.core.RunSyncLoop;
import io.corobridge.core.SuspendCall;
import io.corobridge.fixtures.UserService;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/** {@link ConcurrencyLimits} as a Java caller sees it: blocking slots and limited calls. */
class ConcurrencyLimitsTest {
    @RegisterExtension
    final TestLoops loops = new TestLoops();

    private final RunSyncLoop loop = loops.create("java-limits");
    private final LoopBridge bridge = Bridge.on(loop);
    private final ConcurrencyLimits limits = bridge.limits();
    private final UserService users = new UserService();

    @Test
    void aBridgeMadeBeforeTheLoopIsGivenASharedStoreUsesThatStore() {
        RunSyncLoop shared = loops.create("java-shared-limits");
        LoopBridge early = Bridge.on(shared); // made first, as a Java service would in its constructor
        ConcurrencyLimitsKt.useSharedLimits(shared, new CountingStore(7));
        assertEquals(7, early.limits().occupied("db"), "the bridge's limits are the store's");
        assertEquals(7, Bridge.on(shared).limits().occupied("db"));
    }

    /** A store that answers only occupied(), with a fixed figure: enough to tell which store a loop's limits use. */
    private static final class CountingStore implements io.corobridge.core.SharedLimitStore {
        private final int occupied;

        CountingStore(int occupied) {
            this.occupied = occupied;
        }

        @Override
        public int occupied(String tag) {
            return occupied;
        }

        @Override
        public void create(String tag, int slots) {
            throw new UnsupportedOperationException("create");
        }

        @Override
        public java.util.Map<String, Integer> limits() {
            throw new UnsupportedOperationException("limits");
        }

        @Override
        public Object acquire(List<String> tags, Duration timeout, kotlin.coroutines.Continuation<? super ConcurrencyLimits.Slots> continuation) {
            throw new UnsupportedOperationException("acquire");
        }

        @Override
        public ConcurrencyLimits.Slots acquireBlocking(List<String> tags, Duration timeout) {
            throw new UnsupportedOperationException("acquireBlocking");
        }

        @Override
        public void createRate(String tag, double perSecond, int burst) {
            throw new UnsupportedOperationException("createRate");
        }

        @Override
        public long reserveRate(String tag, long maxWaitNanos) {
            throw new UnsupportedOperationException("reserveRate");
        }

        @Override
        public void close() {
        }
    }

    @Test
    void nullTagsAreRefusedNamingTheArgument() {
        limits.create("db", 1);
        NullPointerException element = assertThrows(NullPointerException.class,
                () -> limits.acquire(Duration.ofSeconds(1), "db", null));
        assertEquals("tags[1] must not be null", element.getMessage());
        NullPointerException inLimited = assertThrows(NullPointerException.class,
                () -> limits.limited(c -> "x", (String) null));
        assertEquals("tags[0] must not be null", inLimited.getMessage());
        NullPointerException tag = assertThrows(NullPointerException.class, () -> limits.occupied(null));
        assertTrue(tag.getMessage().contains("tag"), tag.getMessage());
        assertEquals(0, limits.occupied("db"), "nothing was taken");
    }

    @Test
    void slotsAreHeldUntilClosedInTryWithResources() {
        limits.create("db", 2);
        ConcurrencyLimits.Slots first = limits.acquire(Duration.ofSeconds(5), "db");
        ConcurrencyLimits.Slots second = limits.acquire(Duration.ofSeconds(5), "db");
        assertEquals(2, limits.occupied("db"));
        ConcurrencyLimitTimeoutException full = assertThrows(ConcurrencyLimitTimeoutException.class,
                () -> limits.acquire(Duration.ofMillis(10), "db"));
        assertTrue(full.getMessage().contains("held 2 / slots 2"), full.getMessage());
        second.close();
        assertEquals(1, limits.occupied("db"));
        second.close(); // closing again gives nothing more back
        assertEquals(1, limits.occupied("db"));
        first.close();
        try (ConcurrencyLimits.Slots slots = limits.acquire(Duration.ofSeconds(5), "db")) {
            assertEquals(1, limits.occupied("db"), slots.toString());
        }
        assertEquals(0, limits.occupied("db"));
        assertTrue(limits.totalWaitTime("db").compareTo(Duration.ofMillis(10)) >= 0, "the failed wait counted");
    }

    @Test
    void aLimitedCallRespectsTheLimitInGatherAsyncAndLaunch() throws Exception {
        limits.create("svc", 2);
        AtomicInteger running = new AtomicInteger();
        AtomicInteger most = new AtomicInteger();
        CompletableFuture<String> gate = new CompletableFuture<>();
        List<SuspendCall<String>> calls = new ArrayList<>();
        for (int i = 0; i < 20; i++) {
            calls.add(limits.limited(c -> users.tracked(
                    () -> most.accumulateAndGet(running.incrementAndGet(), Math::max),
                    running::decrementAndGet,
                    "ok", c), "svc"));
        }
        // The gated calls take both slots first, so the gather's calls must wait for them: no order between the
        // gather's starts and other tasks on the loop is assumed (a gather yields the loop while it starts calls).
        CompletableFuture<String> held = bridge.async(limits.limited(c -> users.await(gate, c), "svc"));
        BackgroundTask task = bridge.launch(limits.limited(c -> users.await(gate, c), "svc"));
        TestThreads.awaitCondition("both gated calls hold a slot", () -> limits.occupied("svc") == 2);
        CompletableFuture<List<String>> all = bridge.gatherAsync(calls);
        TestThreads.awaitCondition("the gather's calls wait for a slot", () -> ConcurrencyLimitsKt.getLimits(loop).waiting("svc") > 0);
        gate.complete("open");
        assertEquals("open", held.get(10, TimeUnit.SECONDS));
        task.completion().get(10, TimeUnit.SECONDS);
        assertEquals(20, all.get(10, TimeUnit.SECONDS).size());
        assertEquals("user-1", bridge.sync(limits.limited(c -> users.load(1, c), "svc")));
        assertTrue(most.get() <= 2, "at most 2 at once, saw " + most.get());
        assertEquals(0, limits.occupied("svc"));
        assertTrue(Bridge.limits() != null);
    }

    @Test
    void badInputNamesTheArgument() {
        NullPointerException tag = assertThrows(NullPointerException.class, () -> limits.acquire(Duration.ofSeconds(1), "a", null));
        assertTrue(tag.getMessage().contains("tags[1]"), tag.getMessage());
        assertThrows(NullPointerException.class, () -> limits.limited(null, "a"));
        IllegalArgumentException unknown = assertThrows(IllegalArgumentException.class,
                () -> limits.limited(c -> users.load(1, c), "nope"));
        assertTrue(unknown.getMessage().contains("\"nope\""), unknown.getMessage());
    }
}
