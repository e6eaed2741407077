package io.corobridge.limits.postgres

import io.corobridge.core.ConcurrencyLimitTimeoutException
import io.corobridge.core.RunSyncLoop
import io.corobridge.core.SuspendCall
import io.corobridge.core.limits
import io.corobridge.core.useSharedLimits
import java.time.Duration
import java.util.concurrent.CopyOnWriteArrayList
import java.util.concurrent.atomic.AtomicInteger
import kotlin.coroutines.Continuation
import kotlin.time.Duration.Companion.milliseconds
import kotlin.time.Duration.Companion.seconds
import kotlinx.coroutines.CompletableDeferred
import kotlinx.coroutines.async
import kotlinx.coroutines.awaitAll
import kotlinx.coroutines.coroutineScope
import kotlinx.coroutines.withTimeoutOrNull
import kotlinx.coroutines.yield
import org.junit.jupiter.api.AfterEach
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertThrows
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.BeforeEach
import org.junit.jupiter.api.Test

/** A loop's limits kept in the PostgreSQL store: the same ConcurrencyLimits operations, shared by loops of "JVMs". */
class SharedConcurrencyLimitsTest {
    private val stores = CopyOnWriteArrayList<PostgresLimitStore>()
    private val loops = CopyOnWriteArrayList<RunSyncLoop>()

    /** A loop with its own store, as one JVM of a service would have. */
    private fun jvm(name: String): RunSyncLoop {
        val store = PostgresLimitStore.open(TestDatabase.dataSource).also { stores += it }
        return RunSyncLoop.create(name).useSharedLimits(store).also { loops += it }
    }

    @BeforeEach
    fun clean() {
        TestDatabase.clean()
    }

    @AfterEach
    fun closeAll() {
        loops.forEach { it.close() }
        stores.forEach { it.close() }
    }

    @Test
    fun `withConcurrencyLimit on loops of two JVMs shares one limit`() {
        val one = jvm("one")
        val two = jvm("two")
        one.limits.create("db", 2)
        val inside = AtomicInteger()
        val most = AtomicInteger()
        val twoInside = CompletableDeferred<Unit>()
        val futures = listOf(one, two).map { loop ->
            loop.runAsync {
                coroutineScope {
                    List(6) {
                        async {
                            loop.limits.withConcurrencyLimit("db") {
                                val now = inside.incrementAndGet()
                                most.accumulateAndGet(now, ::maxOf)
                                if (now == 2) twoInside.complete(Unit)
                                withTimeoutOrNull(10.seconds) { twoInside.await() }
                                yield()
                                inside.decrementAndGet()
                            }
                        }
                    }.awaitAll()
                }
            }
        }
        futures.forEach { it.get() }
        assertEquals(2, most.get(), "2 at once across both loops, never more")
        awaitOccupied(0) { two.limits.occupied("db") }
        assertEquals(listOf("db"), two.limits.tags)
    }

    @Test
    fun `blocking acquire, limited calls, stats and errors keep their in-process form`() {
        val loop = jvm("forms")
        loop.limits.create("db", 1)
        val slots = loop.limits.acquire(Duration.ofSeconds(5), "db")
        assertEquals(listOf("db"), slots.tags)
        assertEquals(1, loop.limits.occupied("db"))
        // On the loop thread the loop's own statistics need no round trip to the store.
        val seen = loop.runSync { loop.stats().limits.single() }
        assertEquals(-1, seen.slots)
        assertEquals(1, seen.occupied, "held here")
        val timeout = assertThrows(ConcurrencyLimitTimeoutException::class.java) {
            loop.runSync { loop.limits.withConcurrencyLimit("db", timeout = 300.milliseconds) { } }
        }
        assertEquals("db", timeout.tag)
        slots.close()
        slots.close() // harmless
        val call = object : SuspendCall<String> {
            override fun invoke(continuation: Continuation<String>): Any = "ran"
        }
        assertEquals("ran", loop.runSync(loop.limits.limited(call, "db")))
        val unknown = assertThrows(IllegalArgumentException::class.java) {
            loop.runSync { loop.limits.withConcurrencyLimit("nope") { } }
        }
        assertTrue(unknown.message!!.contains("unknown concurrency limit \"nope\""), unknown.message)
        val stats = loop.limits.stats().single()
        assertEquals(listOf("db", "1", "0"), listOf(stats.tag, stats.slots.toString(), stats.occupied.toString()))
        assertTrue(stats.totalWaitTime >= Duration.ofMillis(300), "the timed-out wait was counted: ${stats.totalWaitTime}")
    }

    @Test
    fun `a loop chooses its store before it first uses its limits`() {
        val loop = RunSyncLoop.create("late").also { loops += it }
        loop.limits.tags
        val store = PostgresLimitStore.open(TestDatabase.dataSource).also { stores += it }
        val refused = assertThrows(IllegalStateException::class.java) { loop.useSharedLimits(store) }
        assertTrue(refused.message!!.contains("give it a shared store before its first use"), refused.message)
    }

    @Test
    fun `a size change while slots are held is refused as in-process, an operator's update is not`() {
        val loop = jvm("resize")
        loop.limits.create("db", 2)
        loop.limits.acquire(Duration.ofSeconds(5), "db").use {
            val refused = assertThrows(IllegalStateException::class.java) { loop.limits.create("db", 4) }
            assertTrue(refused.message!!.contains("cannot change from 2 to 4 slots while 1 of them are held"), refused.message)
            loop.limits.create("db", 2) // the same size: nothing to change
            stores.single().update("db", 4)
            assertEquals(4, stores.single().limits()["db"])
        }
    }

    @Test
    fun `slots whose lease is lost say so`() {
        val store = PostgresLimitStore.open(TestDatabase.dataSource, PostgresLimitStore.Settings(leaseTime = Duration.ofSeconds(1)))
        stores += store
        val loop = RunSyncLoop.create("lost").useSharedLimits(store).also { loops += it }
        loop.limits.create("db", 1)
        val slots = loop.limits.acquire(Duration.ofSeconds(5), "db")
        assertTrue(slots.isValid)
        store.reset("db")
        val deadline = System.nanoTime() + java.util.concurrent.TimeUnit.SECONDS.toNanos(10)
        while (slots.isValid) {
            check(System.nanoTime() < deadline) { "the lost lease was never noticed" }
            Thread.onSpinWait()
        }
        slots.close()
    }

    @Test
    fun `a rate limit in the store holds for loops of two JVMs together`() {
        val one = jvm("rate-one")
        val two = jvm("rate-two")
        one.limits.createRate("api", perSecond = 20.0)
        val passed = java.util.Collections.synchronizedList(ArrayList<Long>())
        val futures = listOf(one, two).map { loop ->
            loop.runAsync {
                repeat(6) {
                    loop.limits.rateLimit("api")
                    passed += System.nanoTime()
                }
            }
        }
        futures.forEach { it.get() }
        val times = passed.sorted()
        assertEquals(12, times.size)
        for (k in 2 until times.size) {
            // 20 per second across both: pass k no sooner than k - 2 intervals of 50 ms after pass 2 (less the round
            // trips' jitter, since the database's clock sets the moments; the first passes also pay for warming up).
            val earliest = (k - 2) * 50_000_000L - 25_000_000L
            assertTrue(times[k] - times[2] >= earliest, "pass $k came ${(times[k] - times[2]) / 1e6} ms after pass 2")
        }
        one.limits.createRate("slow", perSecond = 1.0)
        one.limits.rateLimitBlocking(Duration.ofSeconds(5), "slow")
        val refused = assertThrows(ConcurrencyLimitTimeoutException::class.java) {
            two.limits.rateLimitBlocking(Duration.ofMillis(100), "slow")
        }
        assertTrue(refused.message!!.contains("rate limit \"slow\" in the shared store would not let this pass"), refused.message)
        val unknown = assertThrows(IllegalArgumentException::class.java) { two.limits.rateLimitBlocking(Duration.ofSeconds(1), "nope") }
        assertTrue(unknown.message!!.contains("unknown rate limit \"nope\""), unknown.message)
    }

    @Test
    fun `a rate too slow to count is refused, and one left in the table by hand never lets everything pass`() {
        val loop = jvm("rate-bounds")
        val store = stores.last()
        val tiny = assertThrows(IllegalArgumentException::class.java) { loop.limits.createRate("sub", 4.9E-324) }
        assertTrue(tiny.message!!.contains("perSecond must be at least one a year"), tiny.message)
        val direct = assertThrows(IllegalArgumentException::class.java) { store.createRate("sub", 4.9E-324, 1) }
        assertTrue(direct.message!!.contains("perSecond must be at least one a year"), direct.message)
        // What an older store (or an operator's SQL) may have left: an infinite schedule. Before, every pass got through.
        TestDatabase.dataSource.connection.use { db ->
            db.createStatement().use { it.execute("INSERT INTO corobridge_rate (tag, per_second, burst, tat) VALUES ('sub', 4.9E-324, 1, 'infinity')") }
        }
        val unusable = assertThrows(IllegalStateException::class.java) { loop.limits.rateLimitBlocking(Duration.ofSeconds(2), "sub") }
        assertTrue(unusable.message!!.contains("has an unusable rate"), unusable.message)
    }
}
