package io.corobridge;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.corobridge.core.RunContext;
import io.corobridge.core.RunSyncLoop;
import io.corobridge.core.SuspendCall;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/** Blocking Java code among suspend calls: {@link LoopBridge#inWorkerThread}. */
class WorkerThreadTest {
    @RegisterExtension
    final TestLoops loops = new TestLoops();

    private final RunSyncLoop loop = loops.create("java-workers");
    private final LoopBridge bridge = Bridge.on(loop);

    @Test
    void aGatherOfBlockingCallsRunsThemOnWorkersWithinTheLimit() {
        loop.setWorkerLimit(3);
        AtomicInteger running = new AtomicInteger();
        AtomicInteger most = new AtomicInteger();
        CountDownLatch threeAtOnce = new CountDownLatch(1);
        List<SuspendCall<String>> calls = new ArrayList<>();
        for (int i = 0; i < 30; i++) {
            int n = i;
            calls.add(bridge.inWorkerThread(() -> {
                int now = running.incrementAndGet();
                most.accumulateAndGet(now, Math::max);
                if (now == 3) {
                    threeAtOnce.countDown();
                }
                // Each block waits until three have run at once: without the limit, all 30 would pile in.
                assertTrue(threeAtOnce.await(10, TimeUnit.SECONDS), "three blocks ran at once");
                running.decrementAndGet();
                assertTrue(RunContext.isInWorkerThread());
                return "item-" + n;
            }));
        }
        List<String> results = bridge.gather(calls);
        assertEquals(30, results.size());
        assertEquals("item-0", results.get(0));
        assertEquals("item-29", results.get(29));
        assertEquals(3, most.get());
    }

    @Test
    void aCheckedExceptionOfTheBlockingCodeReachesTheCaller() {
        IOException failure = new IOException("tape jammed");
        IOException thrown = assertThrows(IOException.class, () -> bridge.sync(bridge.inWorkerThread(() -> {
            throw failure;
        })));
        // kotlinx.coroutines' debug mode (on with -ea, as in this build) hands on a copy caused by the original.
        assertTrue(thrown == failure || thrown.getCause() == failure, thrown.toString());
    }

    @Test
    void bridgeSyncInsideAWorkerRunsOnTheLoopNotOnANewThread() {
        Thread loopThread = bridge.sync(c -> Thread.currentThread());
        Thread seen = bridge.sync(bridge.inWorkerThread(() -> bridge.sync(c -> Thread.currentThread())));
        assertSame(loopThread, seen);
        assertEquals("in a worker", Bridge.on(loop).sync(bridge.inWorkerThread(
                () -> RunContext.isInWorkerThread() && !RunContext.isOnLoopThread() ? "in a worker" : "elsewhere")));
    }

    @Test
    void nullWorkIsRefusedNamingTheArgument() {
        NullPointerException thrown = assertThrows(NullPointerException.class, () -> bridge.inWorkerThread(null));
        assertTrue(thrown.getMessage().contains("work"), thrown.getMessage());
        IllegalArgumentException limit = assertThrows(IllegalArgumentException.class, () -> loop.setWorkerLimit(-3));
        assertTrue(limit.getMessage().contains("workerLimit"), limit.getMessage());
    }
}
