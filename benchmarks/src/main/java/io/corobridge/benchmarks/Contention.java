package io.corobridge.benchmarks;

import io.corobridge.core.ConcurrencyLimits;
import io.corobridge.core.ConcurrencyLimitsKt;
import io.corobridge.core.RunSyncLoop;
import io.corobridge.limits.postgres.PostgresLimitStore;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.SQLException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.LockSupport;

/**
 * One caller of {@link SharedLimitsContendedBenchmark}: take a slot of the limit {@code bench}, hold it for
 * {@code holdMicros}, give it back. Also the {@code main} of the three other JVMs the benchmark starts: 16 such
 * callers in a loop until their standard input closes, then {@code done <cycles>} on standard output.
 *
 * <p>Ways: {@code inProcess} (the loop's own limits: callers of one JVM only), {@code postgresStore} (the same
 * API on a loop given a {@link PostgresLimitStore}), {@code advisoryLock} (by hand: caller {@code i} takes
 * {@code pg_advisory_lock(i % slots)} on a connection of its own, so the slots are striped, not pooled).
 */
final class Contention {
    static final String TAG = "bench";
    static final int SLOTS = 8;
    static final int CALLERS_PER_JVM = 16;
    static final Duration TIMEOUT = Duration.ofSeconds(60);

    /** What one caller needs: the limits (inProcess, postgresStore) or its own advisory-lock connection. */
    static final class Caller implements AutoCloseable {
        private final ConcurrencyLimits limits;
        private final Connection connection;
        private final PreparedStatement lock;
        private final PreparedStatement unlock;
        private final long holdNanos;

        Caller(ConcurrencyLimits limits, long holdMicros) {
            this.limits = limits;
            this.connection = null;
            this.lock = null;
            this.unlock = null;
            this.holdNanos = holdMicros * 1000;
        }

        Caller(Connection connection, int index, long holdMicros) throws SQLException {
            this.limits = null;
            this.connection = connection;
            this.lock = connection.prepareStatement("SELECT pg_advisory_lock(" + (index % SLOTS) + ")");
            this.unlock = connection.prepareStatement("SELECT pg_advisory_unlock(" + (index % SLOTS) + ")");
            this.holdNanos = holdMicros * 1000;
        }

        void cycle() throws SQLException {
            if (limits != null) {
                try (ConcurrencyLimits.Slots ignored = limits.acquire(TIMEOUT, TAG)) {
                    hold();
                }
            } else {
                lock.executeQuery().close();
                try {
                    hold();
                } finally {
                    unlock.executeQuery().close();
                }
            }
        }

        private void hold() {
            if (holdNanos > 0) LockSupport.parkNanos(holdNanos);
        }

        @Override
        public void close() throws SQLException {
            if (connection != null) connection.close();
        }
    }

    /** A running group of callers on threads of their own, stopped by {@link #stop()}. */
    static final class Group {
        private final List<Thread> threads = new ArrayList<>();
        private final AtomicLong cycles = new AtomicLong();
        private final List<Throwable> failures = new java.util.concurrent.CopyOnWriteArrayList<>();
        private volatile boolean stopping;

        void start(List<Caller> callers) {
            for (int i = 0; i < callers.size(); i++) {
                Caller caller = callers.get(i);
                Thread thread = new Thread(() -> {
                    try (caller) {
                        while (!stopping) {
                            caller.cycle();
                            cycles.incrementAndGet();
                        }
                    } catch (Throwable failure) {
                        failures.add(failure);
                    }
                }, "contender-" + i);
                thread.setDaemon(true);
                threads.add(thread);
                thread.start();
            }
        }

        /** Stops the callers, waits for them, and returns how many cycles they made. */
        long stop() throws InterruptedException {
            stopping = true;
            for (Thread thread : threads) thread.join();
            if (!failures.isEmpty()) {
                IllegalStateException error = new IllegalStateException("a contending caller failed");
                failures.forEach(error::addSuppressed);
                throw error;
            }
            return cycles.get();
        }
    }

    /** {@code Contention <way> <jdbc url> <holdMicros>}: 16 callers until standard input closes. */
    public static void main(String[] args) throws Exception {
        String way = args[0];
        String url = args[1];
        long holdMicros = Long.parseLong(args[2]);
        List<Caller> callers = new ArrayList<>();
        RunSyncLoop loop = null;
        PostgresLimitStore store = null;
        if (way.equals("postgresStore")) {
            store = PostgresLimitStore.open(url);
            loop = ConcurrencyLimitsKt.useSharedLimits(RunSyncLoop.create("contender"), store);
            ConcurrencyLimits limits = ConcurrencyLimitsKt.getLimits(loop);
            for (int i = 0; i < CALLERS_PER_JVM; i++) callers.add(new Caller(limits, holdMicros));
        } else if (way.equals("advisoryLock")) {
            for (int i = 0; i < CALLERS_PER_JVM; i++) callers.add(new Caller(DriverManager.getConnection(url), i, holdMicros));
        } else {
            throw new IllegalArgumentException("way must be postgresStore or advisoryLock, not " + way);
        }
        Group group = new Group();
        group.start(callers);
        System.out.println("ready");
        System.out.flush();
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        while (in.readLine() != null) {
            // nothing is sent: the parent closes standard input to stop this JVM
        }
        long cycles = group.stop();
        if (loop != null) loop.close();
        if (store != null) store.close();
        System.out.println("done " + cycles);
        System.out.flush();
    }

    /** Another JVM running this class's main, and its standard output. */
    static final class Jvm {
        private final Process process;
        private final BufferedReader out;

        /** Starts it; returns once its callers run. */
        Jvm(String way, String url, long holdMicros) throws IOException {
            String javaBin = Path.of(System.getProperty("java.home"), "bin", "java").toString();
            process = new ProcessBuilder(javaBin, "-Xmx256m", "-cp", System.getProperty("java.class.path"),
                    Contention.class.getName(), way, url, Long.toString(holdMicros))
                    .redirectError(ProcessBuilder.Redirect.INHERIT)
                    .start();
            out = new BufferedReader(new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8));
            String line = out.readLine();
            if (!"ready".equals(line)) {
                process.destroyForcibly();
                throw new IllegalStateException("a contending JVM did not start; it printed " + line);
            }
        }

        /** Closes its standard input, waits for it to end, and returns the cycles it reports. */
        long stop() throws IOException, InterruptedException {
            process.getOutputStream().close();
            String line = out.readLine();
            int status = process.waitFor();
            if (status != 0 || line == null || !line.startsWith("done ")) {
                throw new IllegalStateException("a contending JVM ended with status " + status + " and printed " + line);
            }
            return Long.parseLong(line.substring("done ".length()).trim());
        }
    }

    private Contention() {
    }
}
