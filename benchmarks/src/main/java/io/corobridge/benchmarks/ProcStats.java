package io.corobridge.benchmarks;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.TreeMap;
import java.util.stream.Stream;

/** Figures of this process that Linux keeps under {@code /proc} and the JVM does not report. */
public final class ProcStats {
    private ProcStats() {}

    /**
     * The context switches of every live thread of this process so far, voluntary (a thread parked) and not;
     * -1 where {@code /proc} is not available. Each hand-off to a parked thread costs one.
     */
    public static long contextSwitches() {
        Map<String, long[]> byName = readTasks();
        if (byName == null) return -1;
        long sum = 0;
        for (long[] counts : byName.values()) sum += counts[0] + counts[1];
        return sum;
    }

    /**
     * The context switches of every live thread of this process so far, summed by thread name with its digits
     * left out ({@code http-caller-7} counts as {@code http-caller-}): voluntary, not voluntary, then the
     * nanoseconds they ran and the nanoseconds they waited, ready, for a processor ({@code schedstat}). Empty where
     * {@code /proc} is not available. Linux keeps the first 15 characters of a thread's name.
     */
    public static Map<String, long[]> switchesByThreadName() {
        Map<String, long[]> byName = readTasks();
        return byName == null ? Map.of() : byName;
    }

    /** Every live thread's figures summed by name (see switchesByThreadName), or null without {@code /proc}. */
    private static Map<String, long[]> readTasks() {
        Map<String, long[]> byName = new TreeMap<>();
        Path tasks = Path.of("/proc/self/task");
        if (!Files.isDirectory(tasks)) return null;
        try (Stream<Path> list = Files.list(tasks)) {
            for (Path task : (Iterable<Path>) list::iterator) {
                try {
                    String name = Files.readString(task.resolve("comm")).trim().replaceAll("[0-9]", "");
                    long[] sums = byName.computeIfAbsent(name, n -> new long[4]);
                    String[] sched = Files.readString(task.resolve("schedstat")).trim().split(" ");
                    sums[2] += Long.parseLong(sched[0]);
                    sums[3] += Long.parseLong(sched[1]);
                    for (String line : Files.readAllLines(task.resolve("status"))) {
                        if (line.startsWith("voluntary_ctxt_switches:")) {
                            sums[0] += Long.parseLong(line.substring(line.indexOf(':') + 1).trim());
                        } else if (line.startsWith("nonvoluntary_ctxt_switches:")) {
                            sums[1] += Long.parseLong(line.substring(line.indexOf(':') + 1).trim());
                        }
                    }
                } catch (IOException ended) {
                    // The thread ended while the threads were listed: its switches are counted nowhere now.
                }
            }
        } catch (IOException e) {
            return null;
        }
        return byName;
    }
}
