package io.corobridge.benchmarks;

import io.corobridge.core.ConcurrencyLimits;
import io.corobridge.core.ConcurrencyLimitsKt;
import io.corobridge.core.RunSyncLoop;
import io.corobridge.limits.postgres.PostgresLimitStore;
import io.zonky.test.db.postgres.embedded.EmbeddedPostgres;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Threads;

/**
 * 64 callers contending for one limit of 8 slots: each takes a slot, holds it for {@code holdMicros} (0, 1 ms or
 * 10 ms of simulated work), and gives it back. JMH measures the 16 callers of this JVM; 48 more contend meanwhile.
 * For {@code postgresStore} and {@code advisoryLock} they are 16 each in three other JVMs ({@link Contention#main})
 * sharing the same PostgreSQL on loopback; the loop's own limits cannot be shared between JVMs, so for
 * {@code inProcess} they are 48 more threads of this one. With fair sharing this JVM gets a quarter of the cycles,
 * so the total is about four times the score (the other JVMs' counts are printed to the log; the first one started
 * runs longest, so counts more). With a hold of 1 ms, 8 slots allow at most 8,000 cycles a second in all, 2,000 for
 * this JVM's share; with 10 ms, 800 and 200.
 *
 * <p>{@code -jvmArgsAppend -Dcorobridge.bench.postgres=<JDBC URL>} runs it against a server of your own instead of
 * the embedded one (the store's tables there are dropped first).
 */
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Threads(Contention.CALLERS_PER_JVM)
@State(Scope.Benchmark)
public class SharedLimitsContendedBenchmark {
    @Param({"inProcess", "postgresStore", "advisoryLock"})
    public String way;

    @Param({"0", "1000", "10000"})
    public long holdMicros;

    /** JVMs of 16 callers each, this one included (for inProcess: threads of this JVM, 16 per "JVM"). */
    @Param({"4"})
    public int jvms;

    private EmbeddedPostgres postgres;
    private String url;
    private RunSyncLoop loop;
    private PostgresLimitStore store;
    private ConcurrencyLimits limits;
    private Contention.Group otherThreads;
    private final List<Contention.Jvm> otherJvms = new ArrayList<>();
    private final AtomicInteger callers = new AtomicInteger();

    @Setup(Level.Trial)
    public void setUp() throws Exception {
        switch (way) {
            case "inProcess" -> {
                loop = RunSyncLoop.create("bench-contended");
                limits = ConcurrencyLimitsKt.getLimits(loop);
                limits.create(Contention.TAG, Contention.SLOTS);
                List<Contention.Caller> others = new ArrayList<>();
                for (int i = 0; i < (jvms - 1) * Contention.CALLERS_PER_JVM; i++) {
                    others.add(new Contention.Caller(limits, holdMicros));
                }
                otherThreads = new Contention.Group();
                otherThreads.start(others);
            }
            case "postgresStore", "advisoryLock" -> {
                // A server of the caller's (-Dcorobridge.bench.postgres=<JDBC URL>; the store's tables are dropped
                // first), or one started here: 64 advisory-lock connections, 8 of the stores', and some to spare.
                url = System.getProperty("corobridge.bench.postgres");
                if (url == null) {
                    postgres = EmbeddedPostgres.builder().setServerConfig("max_connections", "200")
                            .setServerConfig("track_functions", "pl").start();
                    url = postgres.getJdbcUrl("postgres", "postgres");
                } else {
                    try (Connection db = DriverManager.getConnection(url); Statement statement = db.createStatement()) {
                        statement.execute("DROP TABLE IF EXISTS corobridge_lease, corobridge_limit, corobridge_rate, "
                                + "corobridge_waiter, corobridge_schema CASCADE");
                        statement.execute("DROP FUNCTION IF EXISTS corobridge_take, corobridge_serve, corobridge_sweep, "
                                + "corobridge_poll, corobridge_count_lease");
                    }
                }
                if (way.equals("postgresStore")) {
                    store = PostgresLimitStore.open(url);
                    loop = ConcurrencyLimitsKt.useSharedLimits(RunSyncLoop.create("bench-contended"), store);
                    limits = ConcurrencyLimitsKt.getLimits(loop);
                    limits.create(Contention.TAG, Contention.SLOTS);
                }
                for (int i = 1; i < jvms; i++) otherJvms.add(new Contention.Jvm(way, url, holdMicros));
            }
            default -> throw new IllegalArgumentException("unknown way " + way);
        }
    }

    @TearDown(Level.Trial)
    public void tearDown() throws Exception {
        StringBuilder others = new StringBuilder();
        if (otherThreads != null) others.append(" ").append(otherThreads.stop());
        for (Contention.Jvm jvm : otherJvms) others.append(" ").append(jvm.stop());
        System.out.println("[cycles of the other " + (otherThreads != null ? "threads" : "JVMs") + ":" + others + "]");
        // -Dcorobridge.bench.diag=true (with -jvmArgsAppend): the server's own figures for the store's functions and tables.
        if (url != null && Boolean.getBoolean("corobridge.bench.diag")) {
            try (var db = DriverManager.getConnection(url); var st = db.createStatement()) {
                for (String q : List.of("SELECT funcname, calls, total_time, self_time FROM pg_stat_user_functions",
                        "SELECT relname, n_tup_ins, n_tup_del, n_dead_tup, n_live_tup, autovacuum_count FROM pg_stat_user_tables")) {
                    try (var rs = st.executeQuery(q)) {
                        while (rs.next()) {
                            StringBuilder row = new StringBuilder("[diag]");
                            for (int c = 1; c <= rs.getMetaData().getColumnCount(); c++) row.append(' ').append(rs.getString(c));
                            System.out.println(row);
                        }
                    }
                }
            }
        }
        if (loop != null) loop.close();
        if (store != null) store.close();
        if (postgres != null) postgres.close();
    }

    /** One of this JVM's 16 callers. */
    @State(Scope.Thread)
    public static class Caller {
        Contention.Caller caller;

        @Setup(Level.Trial)
        public void setUp(SharedLimitsContendedBenchmark benchmark) throws Exception {
            int index = benchmark.callers.getAndIncrement();
            caller = benchmark.way.equals("advisoryLock")
                    ? new Contention.Caller(DriverManager.getConnection(benchmark.url), index, benchmark.holdMicros)
                    : new Contention.Caller(benchmark.limits, benchmark.holdMicros);
        }

        @TearDown(Level.Trial)
        public void tearDown() throws Exception {
            caller.close();
        }
    }

    /** Take a slot of {@code bench}, hold it, give it back. */
    @Benchmark
    public void acquireHoldRelease(Caller caller) throws Exception {
        caller.caller.cycle();
    }
}
