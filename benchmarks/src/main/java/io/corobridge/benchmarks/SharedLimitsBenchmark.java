package io.corobridge.benchmarks;

import io.corobridge.core.ConcurrencyLimits;
import io.corobridge.core.ConcurrencyLimitsKt;
import io.corobridge.core.RunSyncLoop;
import io.corobridge.limits.postgres.PostgresLimitStore;
import io.zonky.test.db.postgres.embedded.EmbeddedPostgres;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;

/**
 * One uncontended acquire and release of a named limit from a plain thread: in the loop (the default store),
 * in PostgreSQL (corobridge-limits-postgres: one transaction to grant, the release handed to the store's thread),
 * and the hand-written cross-process lock teams use on PostgreSQL, {@code pg_advisory_lock} and
 * {@code pg_advisory_unlock} on one connection (two round trips, a limit of 1 only). The server is a real
 * PostgreSQL on loopback, started by the benchmark.
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@State(Scope.Benchmark)
public class SharedLimitsBenchmark {
    private EmbeddedPostgres postgres;
    private RunSyncLoop inProcessLoop;
    private ConcurrencyLimits inProcess;
    private PostgresLimitStore store;
    private Connection advisory;
    private PreparedStatement lock;
    private PreparedStatement unlock;
    private final List<String> tags = List.of("bench");

    @Setup(Level.Trial)
    public void setUp() throws Exception {
        postgres = EmbeddedPostgres.builder().start();
        inProcessLoop = RunSyncLoop.create("bench-limits");
        inProcess = ConcurrencyLimitsKt.getLimits(inProcessLoop);
        inProcess.create("bench", 1000);
        store = PostgresLimitStore.open(postgres.getPostgresDatabase());
        store.create("bench", 1000);
        advisory = postgres.getPostgresDatabase().getConnection();
        lock = advisory.prepareStatement("SELECT pg_advisory_lock(42)");
        unlock = advisory.prepareStatement("SELECT pg_advisory_unlock(42)");
    }

    @TearDown(Level.Trial)
    public void tearDown() throws Exception {
        advisory.close();
        store.close();
        inProcessLoop.close();
        postgres.close();
    }

    /** The loop's own limits: {@code limits.acquire(timeout, "bench")}, then close. */
    @Benchmark
    public void inProcess() {
        inProcess.acquire(Duration.ofSeconds(10), "bench").close();
    }

    /** The PostgreSQL store: {@code acquireBlocking}, then close. */
    @Benchmark
    public void postgresStore() {
        store.acquireBlocking(tags, Duration.ofSeconds(10)).close();
    }

    /** By hand: {@code pg_advisory_lock} and {@code pg_advisory_unlock}, one connection, autocommit. */
    @Benchmark
    public void advisoryLock() throws Exception {
        lock.executeQuery().close();
        unlock.executeQuery().close();
    }
}
