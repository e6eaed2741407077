package io.corobridge;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.corobridge.core.RunOn;
import io.corobridge.core.RunSyncLoop;
import io.corobridge.fixtures.UserService;
import java.io.IOException;
import java.lang.reflect.Method;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/**
 * Callers on virtual threads park without pinning their carrier. Runs on a JDK with virtual threads (21+):
 * the one running the tests if it has them, else a Temurin JDK found beside it; skipped when there is none.
 */
class VirtualThreadTest {
    @Test
    void hundredVirtualThreadsWaitInSyncAtOnceOnOneCarrier() throws Exception {
        Optional<Path> java = javaWithVirtualThreads();
        assumeTrue(java.isPresent(), "no JDK 21 or newer found; set JAVA_HOME or install one under /usr/lib/jvm");
        Process child = new ProcessBuilder(java.get().toString(),
                // One carrier thread: if a waiting caller pinned it, no other virtual thread could run.
                "-Djdk.virtualThreadScheduler.parallelism=1",
                "-Djdk.virtualThreadScheduler.maxPoolSize=1",
                "-cp", System.getProperty("java.class.path"), Child.class.getName())
                .redirectErrorStream(true)
                .start();
        boolean exited = child.waitFor(120, TimeUnit.SECONDS);
        if (!exited) {
            child.destroyForcibly();
        }
        String output = new String(child.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(exited, "the child hung: virtual threads could not all wait at once\n" + output);
        assertEquals(0, child.exitValue(), output);
        assertTrue(output.contains("100 virtual callers got 100 results"), output);
    }

    private static Optional<Path> javaWithVirtualThreads() throws IOException {
        if (Runtime.version().feature() >= 21) {
            return Optional.of(Path.of(System.getProperty("java.home"), "bin", "java"));
        }
        Path jvms = Path.of("/usr/lib/jvm");
        if (!Files.isDirectory(jvms)) {
            return Optional.empty();
        }
        try (Stream<Path> dirs = Files.list(jvms)) {
            return dirs.filter(d -> d.getFileName().toString().matches("(temurin|jdk|java)-(2[1-9]|[3-9][0-9]).*"))
                    .map(d -> d.resolve("bin").resolve("java"))
                    .filter(Files::isExecutable)
                    .sorted()
                    .findFirst();
        }
    }

    /** Started on a JDK with virtual threads; compiled for 17, so it reaches them through reflection. */
    public static final class Child {
        public static void main(String[] args) throws Exception {
            Method startVirtualThread = Thread.class.getMethod("startVirtualThread", Runnable.class);
            Method isVirtual = Thread.class.getMethod("isVirtual");
            UserService users = new UserService();
            int callers = 100;
            AtomicInteger waiting = new AtomicInteger();
            CompletableFuture<String> gate = new CompletableFuture<>();
            List<String> results = java.util.Collections.synchronizedList(new ArrayList<>());
            List<Thread> threads = new ArrayList<>();
            try (RunSyncLoop loop = RunSyncLoop.create("virtual")) {
                LoopBridge bridge = Bridge.on(loop);
                for (int i = 0; i < callers; i++) {
                    // A third of the calls run on the caller's own (virtual) thread, whose event loop must unmount
                    // too, and a third on a thread made for the call, for which the caller must wait unmounted.
                    RunOn runOn = i % 3 == 0 ? RunOn.CALLER_THREAD : i % 3 == 1 ? RunOn.LOOP : RunOn.NEW_THREAD;
                    threads.add((Thread) startVirtualThread.invoke(null, (Runnable) () -> {
                        try {
                            if (!(Boolean) isVirtual.invoke(Thread.currentThread())) {
                                throw new AssertionError("not a virtual thread");
                            }
                        } catch (ReflectiveOperationException e) {
                            throw new AssertionError(e);
                        }
                        // Every caller is parked in sync until all hundred are: each must unmount.
                        results.add(bridge.sync(runOn, c -> {
                            if (waiting.incrementAndGet() == callers) {
                                gate.complete("open");
                            }
                            return users.await(gate, c);
                        }));
                    }));
                }
                for (Thread t : threads) {
                    t.join();
                }
            }
            System.out.println(callers + " virtual callers got " + results.size() + " results");
        }
    }
}
