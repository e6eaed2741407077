package io.corobridge.limits.postgres

import io.corobridge.core.ConcurrencyLimitTimeoutException
import io.corobridge.core.RunSyncLoop
import io.corobridge.core.limits
import io.corobridge.core.useSharedLimits
import io.zonky.test.db.postgres.embedded.EmbeddedPostgres
import java.net.ServerSocket
import java.nio.file.Files
import java.time.Duration
import kotlinx.coroutines.yield
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test

/** The database stopped and started again under a store in use: clear errors meanwhile, nothing lost, nothing hung. */
class DatabaseOutageTest {
    @Test
    fun `while the database is down acquisitions fail at their timeout naming it, and all resumes when it is back`() {
        val dataDir = Files.createTempDirectory("corobridge-outage").toFile()
        val port = ServerSocket(0).use { it.localPort }
        fun start(): EmbeddedPostgres =
            EmbeddedPostgres.builder().setDataDirectory(dataDir).setCleanDataDirectory(false).setPort(port).start()
        var server = start()
        val loop = RunSyncLoop.create("outage")
        val store = PostgresLimitStore.open(
            server.getJdbcUrl("postgres", "postgres"),
            PostgresLimitStore.Settings(leaseTime = Duration.ofSeconds(6), pollInterval = Duration.ofMillis(200)),
        )
        try {
            store.create("db", 2)
            val heldAcross = store.acquireBlocking(listOf("db"), Duration.ofSeconds(5))

            server.close() // stopped; its data stays
            val down = System.nanoTime()
            val refused = kotlin.runCatching { store.acquireBlocking(listOf("db"), Duration.ofMillis(800)) }.exceptionOrNull()
            val took = Duration.ofNanos(System.nanoTime() - down)
            assertTrue(refused is ConcurrencyLimitTimeoutException, "a timeout, not a hang: $refused")
            assertTrue(refused!!.message!!.contains("the database could not be used"), refused.message)
            assertTrue(took < Duration.ofSeconds(3), "it failed at its timeout, in $took")
            assertEquals(42, loop.runSync { yield(); 42 }, "the loop serves everything else meanwhile")

            server = start()
            store.acquireBlocking(listOf("db"), Duration.ofSeconds(20)).use {
                assertEquals(2, store.occupied("db"), "the slot held across the outage still counts, and the new one")
            }
            assertTrue(heldAcross.isValid, "the lease outlived a short outage")
            heldAcross.close()
            store.acquireBlocking(listOf("db"), Duration.ofSeconds(5)).use { }
            awaitOccupied(0) { store.occupied("db") }
        } finally {
            store.close()
            loop.close()
            server.close()
            dataDir.deleteRecursively()
        }
    }

    @Test
    fun `a database that stops answering gives a timeout error at the timeout, not a hang or a cancellation`() {
        val dataDir = Files.createTempDirectory("corobridge-hang").toFile()
        val server = EmbeddedPostgres.builder().setDataDirectory(dataDir).setCleanDataDirectory(true).start()
        val store = PostgresLimitStore.open(server.getJdbcUrl("postgres", "postgres"))
        val loop = RunSyncLoop.create("hang").useSharedLimits(store)
        val postmaster = dataDir.resolve("postmaster.pid").readLines().first().trim().toLong()
        val processes = listOf(postmaster) + ProcessHandle.of(postmaster).get().descendants().map { it.pid() }.toList()
        fun signal(name: String) = ProcessBuilder(listOf("kill", "-$name") + processes.map { it.toString() }).start().waitFor()
        try {
            loop.limits.create("db", 1)
            signal("STOP") // every process of the server frozen: connections stay open, nothing answers
            val started = System.nanoTime()
            val blocking = kotlin.runCatching { loop.limits.acquire(Duration.ofSeconds(1), "db") }.exceptionOrNull()
            assertTrue(blocking is ConcurrencyLimitTimeoutException, "blocking: $blocking")
            val suspending = kotlin.runCatching {
                loop.runSync { loop.limits.withConcurrencyLimit("db", timeout = kotlin.time.Duration.parse("1s")) { } }
            }.exceptionOrNull()
            assertTrue(suspending is ConcurrencyLimitTimeoutException, "suspending: $suspending")
            assertTrue(suspending!!.message!!.contains("did not answer") || suspending.message!!.contains("could not be used"), suspending.message)
            val took = Duration.ofNanos(System.nanoTime() - started)
            assertTrue(took < Duration.ofSeconds(8), "both failed near their 1 s timeouts, in $took")
        } finally {
            signal("CONT")
            loop.close()
            store.close()
            server.close()
        }
    }
}
