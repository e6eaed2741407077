package io.corobridge.limits.postgres

import io.corobridge.core.ConcurrencyLimitTimeoutException
import java.time.Duration
import java.util.concurrent.CopyOnWriteArrayList
import java.util.concurrent.TimeUnit
import java.util.concurrent.atomic.AtomicReference
import kotlin.concurrent.thread
import org.junit.jupiter.api.AfterEach
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.BeforeEach
import org.junit.jupiter.api.Test

/**
 * The queue in the database (schema-3.sql): requests that find their tags full wait there, in arrival order across
 * every store (each store stands for a JVM: its own connections and threads, meeting the others only in the
 * database), and the slot a release frees goes to the oldest of them.
 */
class SharedQueueTest {
    private val stores = CopyOnWriteArrayList<PostgresLimitStore>()
    private val threads = CopyOnWriteArrayList<Thread>()

    private fun open(settings: PostgresLimitStore.Settings = PostgresLimitStore.Settings()): PostgresLimitStore =
        PostgresLimitStore.open(TestDatabase.dataSource, settings).also { stores += it }

    @BeforeEach
    fun cleanDatabase() {
        TestDatabase.clean()
    }

    @AfterEach
    fun closeAll() {
        stores.forEach { it.close() }
        threads.forEach { it.join(TimeUnit.SECONDS.toMillis(30)) }
        assertTrue(threads.none { it.isAlive }, "test threads left running")
        val left = Thread.getAllStackTraces().keys.filter { it.isAlive && it.name.startsWith("corobridge-limits-") }
        assertTrue(left.isEmpty(), "store threads left running: ${left.map { it.name }}")
    }

    /** Requests queued in the database now, every store's. */
    private fun queuedInDatabase(): Int = TestDatabase.dataSource.connection.use { db ->
        db.createStatement().use { statement ->
            statement.executeQuery("SELECT coalesce(sum(cardinality(requests)), 0) FROM corobridge_waiter").use { rows ->
                rows.next()
                rows.getInt(1)
            }
        }
    }

    /** Waits (a bounded condition wait, not a sleep) until [count] requests are queued in the database. */
    private fun awaitQueued(count: Int) {
        val deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10)
        while (queuedInDatabase() != count) {
            check(System.nanoTime() < deadline) { "expected $count requests queued, found ${queuedInDatabase()}" }
            Thread.onSpinWait()
        }
    }

    /** A thread that takes one slot of `db` from [store], records [name] once it holds it, and gives it back. */
    private fun requester(
        store: PostgresLimitStore,
        name: String,
        order: MutableList<String>,
        failure: AtomicReference<Throwable>,
        timeout: Duration = Duration.ofSeconds(20),
    ): Thread = thread(name = name) {
        try {
            store.acquireBlocking(listOf("db"), timeout).use { order += name }
        } catch (error: Throwable) {
            failure.compareAndSet(null, error)
        }
    }.also { threads += it }

    @Test
    fun `a freed slot goes to the oldest request of any store, not to whichever store tries first`() {
        val holderStore = open()
        holderStore.create("db", 1)
        val b = open()
        val c = open()
        repeat(5) { round ->
            val held = holderStore.acquireBlocking(listOf("db"), Duration.ofSeconds(5))
            val order = CopyOnWriteArrayList<String>()
            val failure = AtomicReference<Throwable>()
            // b1, then c1, then b2: a store that serves its own requests first would give b2 the slot before c1.
            val b1 = requester(b, "b1", order, failure)
            awaitQueued(1)
            val c1 = requester(c, "c1", order, failure)
            awaitQueued(2)
            val b2 = requester(b, "b2", order, failure)
            awaitQueued(3)
            held.close()
            listOf(b1, c1, b2).forEach { it.join(TimeUnit.SECONDS.toMillis(30)) }
            assertEquals(null, failure.get(), "round $round")
            assertEquals(listOf("b1", "c1", "b2"), order.toList(), "round $round: served in arrival order")
            assertEquals(0, queuedInDatabase())
        }
    }

    @Test
    fun `a request that gave up leaves the queue, so the next one gets the slot at once`() {
        val holderStore = open()
        holderStore.create("db", 1)
        val quitter = open()
        val patient = open()
        val held = holderStore.acquireBlocking(listOf("db"), Duration.ofSeconds(5))
        val order = CopyOnWriteArrayList<String>()
        val quitterFailure = AtomicReference<Throwable>()
        val patientFailure = AtomicReference<Throwable>()
        val first = requester(quitter, "quitter", order, quitterFailure, timeout = Duration.ofMillis(500))
        awaitQueued(1)
        // Its lease is the default 30 s: had the quitter kept its place, the slot would go to it and stay unused for
        // that long, past this request's 10 s timeout.
        val second = requester(patient, "patient", order, patientFailure, timeout = Duration.ofSeconds(10))
        first.join(TimeUnit.SECONDS.toMillis(10))
        assertTrue(quitterFailure.get() is ConcurrencyLimitTimeoutException, "the quitter timed out: ${quitterFailure.get()}")
        awaitQueued(1)
        held.close()
        second.join(TimeUnit.SECONDS.toMillis(20))
        assertEquals(null, patientFailure.get())
        assertEquals(listOf("patient"), order.toList())
        awaitOccupied(0) { holderStore.occupied("db") }
    }

    @Test
    fun `requests queued by a store that died stop blocking the queue when its lease ends`() {
        val holderStore = open()
        holderStore.create("db", 1)
        val dying = open(PostgresLimitStore.Settings(leaseTime = Duration.ofSeconds(1)))
        val survivor = open()
        val held = holderStore.acquireBlocking(listOf("db"), Duration.ofSeconds(5))
        val order = CopyOnWriteArrayList<String>()
        val dyingFailure = AtomicReference<Throwable>()
        val survivorFailure = AtomicReference<Throwable>()
        // Its caller gives up after 2 s (its store's thread is gone, so nobody answers it).
        val ghost = requester(dying, "ghost", order, dyingFailure, timeout = Duration.ofSeconds(2))
        awaitQueued(1)
        dying.worker.haltForTest() // as kill -9 would: its request stays queued, nothing renews it
        val started = System.nanoTime()
        val next = requester(survivor, "survivor", order, survivorFailure, timeout = Duration.ofSeconds(15))
        awaitQueued(2)
        held.close()
        next.join(TimeUnit.SECONDS.toMillis(30))
        val waited = Duration.ofNanos(System.nanoTime() - started)
        assertEquals(null, survivorFailure.get(), "the survivor got the slot (after $waited)")
        assertEquals(listOf("survivor"), order.toList())
        assertTrue(waited < Duration.ofSeconds(10), "within a few seconds of the dead store's 1 s lease: $waited")
        dying.close()
        ghost.join(TimeUnit.SECONDS.toMillis(10))
        TestDatabase.dataSource.connection.use { db ->
            db.createStatement().executeQuery(
                "SELECT held, (SELECT count(*) FROM corobridge_lease WHERE tag = 'db') FROM corobridge_limit WHERE tag = 'db'"
            ).use { rows ->
                rows.next()
                assertEquals(rows.getInt(2), rows.getInt(1), "the count of held slots matches the leases")
            }
        }
    }

    @Test
    fun `a request queued for a limit that is deleted fails at once, naming it`() {
        val holderStore = open()
        holderStore.create("db", 1)
        val waiter = open(PostgresLimitStore.Settings(pollInterval = Duration.ofMinutes(5)))
        holderStore.acquireBlocking(listOf("db"), Duration.ofSeconds(5))
        val failure = AtomicReference<Throwable>()
        val started = System.nanoTime()
        val t = requester(waiter, "waiter", CopyOnWriteArrayList(), failure, timeout = Duration.ofSeconds(60))
        awaitQueued(1)
        assertTrue(holderStore.delete("db"))
        t.join(TimeUnit.SECONDS.toMillis(30))
        val error = failure.get()
        assertTrue(error is IllegalArgumentException && error.message!!.contains("\"db\""), "refused, naming the tag: $error")
        assertTrue(Duration.ofNanos(System.nanoTime() - started) < Duration.ofSeconds(30), "told by NOTIFY, not by a poll")
    }
}
