package io.corobridge.benchmarks;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.stream.Stream;

/** Figures of this process that Linux keeps under {@code /proc} and the JVM does not report. */
public final class ProcStats {
    private ProcStats() {}

    /**
     * The context switches of every live thread of this process so far, voluntary (a thread parked) and not;
     * -1 where {@code /proc} is not available. Each hand-off to a parked thread costs one.
     */
    public static long contextSwitches() {
        Path tasks = Path.of("/proc/self/task");
        if (!Files.isDirectory(tasks)) return -1;
        long sum = 0;
        try (Stream<Path> list = Files.list(tasks)) {
            for (Path task : (Iterable<Path>) list::iterator) {
                try {
                    for (String line : Files.readAllLines(task.resolve("status"))) {
                        if (line.startsWith("voluntary_ctxt_switches:") || line.startsWith("nonvoluntary_ctxt_switches:")) {
                            sum += Long.parseLong(line.substring(line.indexOf(':') + 1).trim());
                        }
                    }
                } catch (IOException ended) {
                    // The thread ended while the threads were listed: its switches are counted nowhere now.
                }
            }
        } catch (IOException e) {
            return -1;
        }
        return sum;
    }
}
