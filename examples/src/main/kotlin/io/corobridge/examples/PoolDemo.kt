package io.corobridge.examples

import com.zaxxer.hikari.HikariConfig
import com.zaxxer.hikari.HikariDataSource
import io.corobridge.core.LoopStats
import io.corobridge.core.RunSyncLoop
import io.corobridge.core.runInWorkerThread
import java.sql.Connection
import java.time.Duration
import kotlinx.coroutines.async
import kotlinx.coroutines.awaitAll
import kotlinx.coroutines.coroutineScope
import kotlinx.coroutines.delay

/**
 * The failure from Prefect's "async best practices" forum thread, on the JVM: many coroutine tasks share a
 * pool of 5 database connections, and a few of them also call slow blocking code.
 *
 * Every task takes a connection (on a worker thread: JDBC blocks), holds it across a short suspension, and
 * gives it back. Two tasks also recalculate a report, which blocks for 600 ms.
 * - [Mode.BLOCKING_ON_LOOP]: the report runs on the loop thread. For 600 ms no coroutine can run, so the
 *   tasks holding connections cannot reach the line that returns them, and the tasks waiting for one give up
 *   after the pool's 500 ms timeout. The watchdog reports the stall, naming [recalculateReport].
 * - [Mode.WORKER_THREAD]: the report runs in `runInWorkerThread`. The loop stays free, connections come back
 *   as fast as the tasks finish, and every task succeeds.
 *
 * Run it: `mvn -q -pl examples -am package -DskipTests exec:java -Dexec.mainClass=io.corobridge.examples.PoolDemo`
 */
object PoolDemo {
    enum class Mode { BLOCKING_ON_LOOP, WORKER_THREAD }

    /** What one run did: each task's stock reading or failure, and the loop's statistics at the end. */
    class Outcome(val results: List<Result<Int>>, val stats: LoopStats) {
        val succeeded: Int get() = results.count { it.isSuccess }
        val failures: List<Throwable> get() = results.mapNotNull { it.exceptionOrNull() }
    }

    const val TASKS = 20
    const val POOL_SIZE = 5
    val POOL_TIMEOUT: Duration = Duration.ofMillis(500)
    val REPORT_TIME: Duration = Duration.ofMillis(600)

    @JvmStatic
    fun main(args: Array<String>) {
        java.util.logging.Logger.getLogger("com.zaxxer.hikari").level = java.util.logging.Level.WARNING
        for (mode in Mode.values()) {
            println("== $mode")
            val outcome = run(mode)
            println("   ${outcome.succeeded} of $TASKS tasks succeeded")
            outcome.failures.groupBy { it.javaClass.name }.forEach { (type, failures) ->
                println("   ${failures.size} failed with $type, e.g. \"${failures.first().message}\"")
            }
            println("   ${outcome.stats}")
        }
    }

    @JvmStatic
    fun run(mode: Mode): Outcome =
        RunSyncLoop.create("pool-demo").use { loop ->
            loop.stallThreshold = Duration.ofMillis(100)
            openPool(mode).use { pool ->
                val results = loop.runSync {
                    coroutineScope {
                        (0 until TASKS).map { id -> async { runCatching { task(id, pool, mode) } } }.awaitAll()
                    }
                }
                Outcome(results, loop.stats())
            }
        }

    /** One task: read a stock level through a pooled connection; tasks 0 and 10 also recalculate the report. */
    private suspend fun task(id: Int, pool: HikariDataSource, mode: Mode): Int {
        if (id % 10 == 0) {
            delay(20) // by now every task is holding a connection or waiting for one
            when (mode) {
                Mode.BLOCKING_ON_LOOP -> recalculateReport()
                Mode.WORKER_THREAD -> runInWorkerThread { recalculateReport() }
            }
        }
        val connection = runInWorkerThread { pool.connection } // blocks until one is free, or the timeout
        try {
            val stock = runInWorkerThread { readStock(connection, id) }
            delay(30) // asynchronous work while holding the connection
            return stock
        } finally {
            connection.close() // back to the pool: an in-memory hand-back, it does not block
        }
    }

    /** The slow blocking call. On the loop thread it stalls every coroutine there. */
    @JvmStatic
    fun recalculateReport() {
        Thread.sleep(REPORT_TIME.toMillis())
    }

    private suspend fun <T> runInWorkerThread(block: () -> T): T = io.corobridge.core.runInWorkerThread(block)

    private fun readStock(connection: Connection, id: Int): Int =
        connection.prepareStatement("select stock from inventory where id = ?").use { statement ->
            statement.setInt(1, id)
            statement.executeQuery().use { rows ->
                rows.next()
                rows.getInt(1)
            }
        }

    private fun openPool(mode: Mode): HikariDataSource {
        val config = HikariConfig()
        config.jdbcUrl = "jdbc:h2:mem:pool-demo-${mode.name.lowercase()};DB_CLOSE_DELAY=-1"
        config.maximumPoolSize = POOL_SIZE
        config.minimumIdle = POOL_SIZE
        config.connectionTimeout = POOL_TIMEOUT.toMillis()
        config.poolName = "pool-demo-${mode.name.lowercase()}"
        val pool = HikariDataSource(config)
        pool.connection.use { connection ->
            connection.createStatement().use { statement ->
                statement.execute("create table if not exists inventory(id int primary key, stock int)")
                statement.execute("delete from inventory")
                for (id in 0 until TASKS) statement.execute("insert into inventory values ($id, ${100 + id})")
            }
        }
        return pool
    }
}
