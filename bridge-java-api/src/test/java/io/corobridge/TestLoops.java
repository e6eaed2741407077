package io.corobridge;

import static org.junit.jupiter.api.Assertions.fail;

import io.corobridge.core.RunSyncLoop;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.stream.Collectors;
import org.junit.jupiter.api.extension.AfterEachCallback;
import org.junit.jupiter.api.extension.BeforeEachCallback;
import org.junit.jupiter.api.extension.ExtensionContext;

/**
 * The loops of one test, and the check that a test leaves no thread behind, registered with
 * {@code @RegisterExtension final TestLoops loops = new TestLoops();}. After each test it closes the loops made
 * with {@link #create}, newest first, then fails the test if a loop or worker thread of corobridge that was not
 * alive before the test still is (the default loop's threads live as long as the JVM and are not counted).
 */
final class TestLoops implements BeforeEachCallback, AfterEachCallback {
    private final List<RunSyncLoop> loops = new ArrayList<>();
    private final List<Duration> graces = new ArrayList<>();
    private Set<Thread> before = Set.of();

    /** A new loop, closed after the test with the default grace. */
    RunSyncLoop create(String name) {
        return create(name, Duration.ofSeconds(5));
    }

    /** A new loop, closed after the test with {@code grace} for its background tasks. */
    synchronized RunSyncLoop create(String name, Duration grace) {
        RunSyncLoop loop = RunSyncLoop.create(name);
        loops.add(loop);
        graces.add(grace);
        return loop;
    }

    @Override
    public void beforeEach(ExtensionContext context) {
        before = new HashSet<>(libraryThreads());
    }

    @Override
    public synchronized void afterEach(ExtensionContext context) {
        RuntimeException failure = null;
        for (int i = loops.size() - 1; i >= 0; i--) {
            try {
                loops.get(i).close(graces.get(i));
            } catch (RuntimeException e) {
                if (failure == null) failure = e; else failure.addSuppressed(e);
            }
        }
        loops.clear();
        graces.clear();
        if (failure != null) throw failure;
        List<String> left = libraryThreads().stream()
                .filter(t -> !before.contains(t))
                .map(Thread::getName)
                .collect(Collectors.toList());
        if (!left.isEmpty()) fail("threads still running after the test: " + left);
    }

    private static List<Thread> libraryThreads() {
        return Thread.getAllStackTraces().keySet().stream()
                .filter(t -> t.isAlive() && (t.getName().startsWith("corobridge-loop-")
                        || t.getName().startsWith("corobridge-worker-")) && !t.getName().contains("-default"))
                .collect(Collectors.toList());
    }
}
