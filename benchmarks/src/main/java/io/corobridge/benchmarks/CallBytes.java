package io.corobridge.benchmarks;

import io.corobridge.Bridge;
import io.corobridge.LoopBridge;
import io.corobridge.core.RunSyncLoop;
import io.corobridge.core.SuspendCall;
import java.lang.management.ManagementFactory;
import java.util.Arrays;
import java.util.Locale;

/**
 * Counts the bytes one {@code Bridge.sync} call allocates on the two threads it runs on, the caller's and the
 * loop's, each read from the JVM's per-thread allocation counter: on the caller for each call (its median, its
 * largest, and the share of calls within 64 B), on the loop over all calls. JMH's {@code -prof gc} divides what every
 * thread allocated by the calls, so the harness's and the watchdog's own allocation adds a fraction of a byte
 * per call to its figure; this count has none of that. Prints one JSON object.
 *
 * <p>Run: {@code java -cp benchmarks/target/benchmarks.jar io.corobridge.benchmarks.CallBytes}
 */
public final class CallBytes {
    private static final int WARM_UP_CALLS = 200_000;
    private static final int COUNTED_CALLS = 1_000_000;

    private CallBytes() {}

    public static void main(String[] args) {
        if (!(ManagementFactory.getThreadMXBean() instanceof com.sun.management.ThreadMXBean threads)
                || !threads.isThreadAllocatedMemorySupported()) {
            System.out.println("{}"); // the report then says the count was not made
            return;
        }
        threads.setThreadAllocatedMemoryEnabled(true);
        SuspendCall<Object> immediate = c -> Fixture.ANSWER;
        try (RunSyncLoop loop = RunSyncLoop.create("bytes")) {
            LoopBridge bridge = Bridge.on(loop);
            Thread onLoop = bridge.sync(c -> Thread.currentThread());
            long loopThread = onLoop.getId();
            long caller = Thread.currentThread().getId();
            Object sink = null;
            for (int i = 0; i < WARM_UP_CALLS; i++) {
                sink = bridge.sync(immediate);
            }
            long[] perCall = new long[COUNTED_CALLS]; // allocated before counting starts
            long loopBefore = threads.getThreadAllocatedBytes(loopThread);
            long callerBefore = threads.getCurrentThreadAllocatedBytes();
            for (int i = 0; i < COUNTED_CALLS; i++) {
                long before = threads.getCurrentThreadAllocatedBytes();
                sink = bridge.sync(immediate);
                perCall[i] = threads.getCurrentThreadAllocatedBytes() - before;
            }
            long callerAfter = threads.getCurrentThreadAllocatedBytes();
            long loopAfter = threads.getThreadAllocatedBytes(loopThread);
            if (sink != Fixture.ANSWER) {
                throw new AssertionError("the call answered " + sink);
            }
            Arrays.sort(perCall);
            long atMost64 = Arrays.stream(perCall).filter(b -> b <= 64).count();
            System.out.println(String.format(Locale.ROOT,
                    "{\"calls\": %d, \"callerMedianBytes\": %d, \"callerMaxBytes\": %d, \"shareAtMost64\": %.6f,"
                            + " \"callerBytesPerCall\": %.3f, \"loopBytesPerCall\": %.3f}",
                    COUNTED_CALLS, perCall[COUNTED_CALLS / 2], perCall[COUNTED_CALLS - 1],
                    atMost64 / (double) COUNTED_CALLS, (callerAfter - callerBefore) / (double) COUNTED_CALLS,
                    (loopAfter - loopBefore) / (double) COUNTED_CALLS));
        }
    }
}
