package io.corobridge.limits.postgres

import io.corobridge.core.ConcurrencyLimitTimeoutException
import java.time.Duration
import java.util.concurrent.ConcurrentHashMap
import java.util.concurrent.CopyOnWriteArrayList
import java.util.concurrent.CountDownLatch
import java.util.concurrent.ThreadLocalRandom
import java.util.concurrent.TimeUnit
import java.util.concurrent.atomic.AtomicInteger
import java.util.concurrent.locks.LockSupport
import kotlin.concurrent.thread
import org.junit.jupiter.api.AfterEach
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.BeforeEach
import org.junit.jupiter.api.Test

/**
 * The queue under fire (stress profile): 4 stores (standing for JVMs) x 8 threads take random sets of three tags
 * with short timeouts, and some are interrupted while they wait, so grants, queueing, withdrawals of requests that
 * gave up and grants racing them all happen at once. Counted in memory, apart from the store: no tag ever has more
 * holders than slots; when all is done nothing is held or queued, and each tag's count of held slots matches its
 * leases (so no withdrawal or race leaked a slot).
 */
class SharedQueueStressTest {
    private val stores = CopyOnWriteArrayList<PostgresLimitStore>()

    @BeforeEach
    fun cleanDatabase() {
        TestDatabase.clean()
    }

    @AfterEach
    fun closeAll() {
        stores.forEach { it.close() }
    }

    @Test
    fun `random multi-tag requests with timeouts and interrupts never exceed a limit nor leak a slot`() {
        val slots = mapOf("a" to 2, "b" to 3, "c" to 1)
        repeat(4) { stores += PostgresLimitStore.open(TestDatabase.dataSource) }
        slots.forEach { (tag, n) -> stores[0].create(tag, n) }
        val inside = ConcurrentHashMap(slots.mapValues { AtomicInteger() })
        val most = ConcurrentHashMap(slots.mapValues { AtomicInteger() })
        val granted = AtomicInteger()
        val timedOut = AtomicInteger()
        val interrupted = AtomicInteger()
        val unexpected = CopyOnWriteArrayList<Throwable>()
        val done = CountDownLatch(32)
        val workers = (0 until 32).map { n ->
            thread(name = "stress-$n") {
                val store = stores[n % stores.size]
                val random = ThreadLocalRandom.current()
                try {
                    repeat(60) {
                        val tags = slots.keys.filter { random.nextInt(3) > 0 }.ifEmpty { listOf("a") }
                        try {
                            store.acquireBlocking(tags, Duration.ofMillis(random.nextLong(20, 400))).use {
                                granted.incrementAndGet()
                                for (tag in tags) {
                                    val now = inside.getValue(tag).incrementAndGet()
                                    most.getValue(tag).accumulateAndGet(now, ::maxOf)
                                }
                                LockSupport.parkNanos(random.nextLong(0, 3_000_000))
                                for (tag in tags) inside.getValue(tag).decrementAndGet()
                            }
                        } catch (_: ConcurrencyLimitTimeoutException) {
                            timedOut.incrementAndGet()
                        } catch (_: java.util.concurrent.CancellationException) {
                            interrupted.incrementAndGet()
                            Thread.interrupted() // the store set the flag again; clear it for the next round
                        }
                    }
                } catch (error: Throwable) {
                    unexpected += error
                } finally {
                    done.countDown()
                }
            }
        }
        // Interrupt random workers while they run: some are waiting in the queue, some hold slots, some neither.
        val interrupter = thread(name = "interrupter") {
            val random = ThreadLocalRandom.current()
            while (!done.await(random.nextLong(5, 30), TimeUnit.MILLISECONDS)) workers[random.nextInt(workers.size)].interrupt()
        }
        assertTrue(done.await(5, TimeUnit.MINUTES), "every worker finished")
        interrupter.join()
        workers.forEach { it.join() }
        assertTrue(unexpected.isEmpty(), "unexpected failures: ${unexpected.take(3)}")
        println("SharedQueueStressTest: $granted granted, $timedOut timed out, $interrupted interrupted; most held ${most.mapValues { it.value.get() }}")
        for ((tag, n) in slots) assertTrue(most.getValue(tag).get() <= n, "tag $tag had ${most.getValue(tag).get()} holders, slots $n")
        assertTrue(granted.get() > 100, "enough got through to mean something: $granted")
        try {
            for (tag in slots.keys) awaitOccupied(0) { stores[1].occupied(tag) }
        } catch (stuck: IllegalStateException) {
            val leases = TestDatabase.dataSource.connection.use { db ->
                db.createStatement().executeQuery("SELECT id, tag, waiter, since FROM corobridge_lease ORDER BY id").use { rows ->
                    generateSequence { if (rows.next()) "${rows.getLong(1)} ${rows.getString(2)} waiter=${rows.getString(3)} ${rows.getTimestamp(4)}" else null }.toList()
                }
            }
            throw AssertionError("slots leaked: $leases; stores ${stores.map { it.worker.id }}", stuck)
        }
        TestDatabase.dataSource.connection.use { db ->
            db.createStatement().use { statement ->
                statement.executeQuery(
                    "SELECT coalesce(sum(cardinality(requests)), 0) FROM corobridge_waiter WHERE expires_at > now()"
                ).use { rows ->
                    rows.next()
                    assertEquals(0, rows.getInt(1), "nothing left queued")
                }
                statement.executeQuery(
                    "SELECT l.tag, l.held, (SELECT count(*) FROM corobridge_lease e WHERE e.tag = l.tag) FROM corobridge_limit l"
                ).use { rows ->
                    while (rows.next()) assertEquals(rows.getInt(3), rows.getInt(2), "held matches the leases of ${rows.getString(1)}")
                }
            }
        }
    }
}
