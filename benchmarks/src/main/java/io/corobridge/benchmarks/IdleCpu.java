package io.corobridge.benchmarks;

import io.corobridge.Bridge;
import io.corobridge.core.RunSyncLoop;
import io.corobridge.core.WaitStrategy;
import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;
import java.util.Locale;

/**
 * Shows that an idle loop uses no CPU once its spin window has passed: the loop thread's CPU time over one
 * second of idleness, after one call, for each wait strategy. Prints one JSON object.
 *
 * <p>Run: {@code java -cp benchmarks/target/benchmarks.jar io.corobridge.benchmarks.IdleCpu}
 */
public final class IdleCpu {
    private IdleCpu() {}

    public static void main(String[] args) throws Exception {
        ThreadMXBean threads = ManagementFactory.getThreadMXBean();
        StringBuilder json = new StringBuilder("{\"windowMillis\": 1000");
        for (String name : new String[] {"ADAPTIVE", "PARK"}) {
            try (RunSyncLoop loop = RunSyncLoop.create("idle-" + name)) {
                loop.setWaitStrategy(name.equals("PARK") ? WaitStrategy.PARK : WaitStrategy.ADAPTIVE);
                Thread loopThread = Bridge.on(loop).sync(c -> Thread.currentThread());
                // A benchmark tool may sleep: let the spin window (microseconds) pass well before measuring.
                Thread.sleep(100);
                long before = threads.getThreadCpuTime(loopThread.getId());
                Thread.sleep(1000);
                long after = threads.getThreadCpuTime(loopThread.getId());
                json.append(String.format(Locale.ROOT, ", \"%sCpuMillis\": %.3f", name.toLowerCase(Locale.ROOT),
                        (after - before) / 1e6));
            }
        }
        System.out.println(json.append('}'));
    }
}
