package io.corobridge.core

import java.time.Duration
import java.util.concurrent.CancellationException
import java.util.concurrent.CompletableFuture
import java.util.concurrent.ConcurrentLinkedQueue
import java.util.concurrent.CountDownLatch
import java.util.concurrent.TimeUnit
import java.util.concurrent.atomic.AtomicInteger
import java.util.concurrent.atomic.AtomicReference
import kotlin.concurrent.thread
import kotlin.coroutines.intrinsics.startCoroutineUninterceptedOrReturn
import kotlin.time.Duration.Companion.milliseconds
import kotlin.time.Duration.Companion.seconds
import kotlinx.coroutines.CompletableDeferred
import kotlinx.coroutines.CoroutineStart
import kotlinx.coroutines.awaitCancellation
import kotlinx.coroutines.coroutineScope
import kotlinx.coroutines.future.await
import kotlinx.coroutines.launch
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertSame
import org.junit.jupiter.api.Assertions.assertThrows
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.extension.RegisterExtension

/** Named concurrency limits, from coroutines (which suspend) and from threads (which block). */
class ConcurrencyLimitsTest {
    @JvmField
    @RegisterExtension
    val loops = TestLoops()
    private val loop = loops.create("limits")
    private val limits = loop.limits

    private val long = Duration.ofSeconds(10)

    @Test
    fun `200 callers, coroutines and threads, never run more than 5 at once`() {
        limits.create("db", 5)
        repeatRounds(3) {
            val running = AtomicInteger()
            val most = AtomicInteger()
            val fiveAtOnce = CompletableFuture<Unit>()
            fun enter() {
                val now = running.incrementAndGet()
                most.accumulateAndGet(now) { a, b -> maxOf(a, b) }
                if (now == 5) fiveAtOnce.complete(Unit)
            }
            val threads = List(100) {
                thread {
                    limits.acquire(long, "db").use {
                        enter()
                        fiveAtOnce.get(10, TimeUnit.SECONDS) // every holder waits until 5 held at once
                        running.decrementAndGet()
                    }
                }
            }
            loop.runSync {
                coroutineScope {
                    repeat(100) {
                        launch {
                            limits.withConcurrencyLimit("db") {
                                enter()
                                fiveAtOnce.await()
                                running.decrementAndGet()
                            }
                        }
                    }
                }
            }
            threads.forEach { it.join() }
            assertEquals(5, most.get(), "most holders at once")
            assertEquals(0, limits.occupied("db"))
            assertEquals(0, limits.waiting("db"))
        }
    }

    @Test
    fun `callers asking for a,b and b,a never deadlock`() {
        limits.create("a", 1)
        limits.create("b", 1)
        val done = AtomicInteger()
        val threads = listOf(arrayOf("a", "b"), arrayOf("b", "a")).map { order ->
            thread {
                repeat(2000) { limits.acquire(long, *order).use { done.incrementAndGet() } }
            }
        }
        loop.runSync {
            coroutineScope {
                listOf(arrayOf("a", "b"), arrayOf("b", "a")).forEach { order ->
                    launch { repeat(2000) { limits.withConcurrencyLimit(*order, timeout = 10.seconds) { done.incrementAndGet(); kotlinx.coroutines.yield() } } }
                }
            }
        }
        threads.forEach { it.join() }
        assertEquals(8000, done.get())
        assertEquals(0, limits.occupied("a") + limits.occupied("b"))
    }

    @Test
    fun `waiters get their slot first come first served`() {
        limits.create("one", 1)
        repeatRounds(5) {
            val order = ConcurrentLinkedQueue<Int>()
            loop.runSync {
                coroutineScope {
                    val release = CompletableDeferred<Unit>()
                    launch(start = CoroutineStart.UNDISPATCHED) { limits.withConcurrencyLimit("one") { release.await() } }
                    repeat(10) { i ->
                        launch(start = CoroutineStart.UNDISPATCHED) { limits.withConcurrencyLimit("one") { order.add(i) } }
                    }
                    assertEquals(10, limits.waiting("one"))
                    release.complete(Unit)
                }
            }
            assertEquals((0 until 10).toList(), order.toList())
        }
    }

    @Test
    fun `blocked threads and suspended coroutines share one queue, first come first served`() {
        limits.create("one", 1)
        repeatRounds(3) {
            val order = ConcurrentLinkedQueue<String>()
            val held = limits.acquire(long, "one")
            val waiters = ArrayList<Thread>()
            // Alternate threads and coroutines, each queued (and seen queued) before the next arrives.
            for (i in 0 until 6) {
                if (i % 2 == 0) {
                    waiters += thread { limits.acquire(long, "one").use { order.add("thread-$i") } }
                } else {
                    loop.scope.launch { limits.withConcurrencyLimit("one") { order.add("coroutine-$i") } }
                }
                awaitState("waiter $i is queued") { limits.waiting("one") == i + 1 }
            }
            held.close()
            waiters.forEach { it.join() }
            awaitState("every waiter ran") { order.size == 6 && limits.occupied("one") == 0 }
            assertEquals(List(6) { if (it % 2 == 0) "thread-$it" else "coroutine-$it" }, order.toList())
        }
    }

    @Test
    fun `slots come back after an exception and after cancelling a running coroutine`() {
        limits.create("x", 2)
        val failure = IllegalStateException("boom")
        val thrown = assertThrows(IllegalStateException::class.java) {
            loop.runSync { limits.withConcurrencyLimit("x") { throw failure } }
        }
        assertSame(failure, thrown)
        assertEquals(0, limits.occupied("x"))
        loop.runSync {
            val inside = CompletableDeferred<Unit>()
            val job = loop.scope.launch { limits.withConcurrencyLimit("x") { inside.complete(Unit); awaitCancellation() } }
            inside.await()
            assertEquals(1, limits.occupied("x"))
            job.cancel()
            job.join()
        }
        assertEquals(0, limits.occupied("x"))
    }

    @Test
    fun `a waiting coroutine that is cancelled, or times out, takes nothing and gives back what it took`() {
        limits.create("a", 1)
        limits.create("b", 1)
        loop.runSync {
            coroutineScope {
                val holdB = CompletableDeferred<Unit>()
                val holder = launch(start = CoroutineStart.UNDISPATCHED) { limits.withConcurrencyLimit("b") { holdB.await() } }
                // Waits for b while holding a: cancelling it gives a back.
                val waiter = launch(start = CoroutineStart.UNDISPATCHED) { limits.withConcurrencyLimit("b", "a") { error("never") } }
                assertEquals(1, limits.occupied("a"))
                assertEquals(1, limits.waiting("b"))
                waiter.cancel()
                waiter.join()
                assertEquals(0, limits.occupied("a"))
                assertEquals(0, limits.waiting("b"))
                // The same with a timeout: the exception names b and its occupancy.
                val timedOut = runCatching {
                    limits.withConcurrencyLimit("a", "b", timeout = 20.milliseconds) { error("never") }
                }.exceptionOrNull()
                assertTrue(timedOut is ConcurrencyLimitTimeoutException, "got $timedOut")
                timedOut as ConcurrencyLimitTimeoutException
                assertEquals("b", timedOut.tag)
                assertTrue(timedOut.message!!.contains("held 1 / slots 1"), timedOut.message)
                assertEquals(0, limits.occupied("a"))
                holdB.complete(Unit)
                holder.join()
            }
        }
        assertEquals(0, limits.occupied("b"))
    }

    @Test
    fun `a blocked thread that is interrupted or times out holds nothing`() {
        limits.create("a", 1)
        limits.create("b", 1)
        val held = limits.acquire(long, "b")
        repeatRounds(10) {
            val thrown = AtomicReference<Throwable>()
            val interruptedAfter = AtomicReference<Boolean>()
            val waiter = thread {
                try {
                    limits.acquire(long, "a", "b").close()
                } catch (e: Throwable) {
                    thrown.set(e)
                    interruptedAfter.set(Thread.currentThread().isInterrupted)
                }
            }
            awaitState("the thread waits for b") { limits.waiting("b") == 1 }
            waiter.interrupt()
            waiter.join()
            assertTrue(thrown.get() is CancellationException, "got ${thrown.get()}")
            assertEquals(true, interruptedAfter.get())
            assertEquals(0, limits.occupied("a"))
            assertEquals(0, limits.waiting("b"))
        }
        val timeout = assertThrows(ConcurrencyLimitTimeoutException::class.java) {
            limits.acquire(Duration.ofMillis(20), "a", "b")
        }
        assertEquals("b", timeout.tag)
        assertEquals(1, timeout.held)
        assertEquals(1, timeout.slots)
        assertTrue(timeout.message!!.contains("\"b\"") && timeout.message!!.contains("waiting 0"), timeout.message)
        assertEquals(0, limits.occupied("a"))
        held.close()
        held.close() // a second close gives back nothing more
        assertEquals(0, limits.occupied("b"))
        limits.acquire(long, "b").use { assertEquals(1, limits.occupied("b")) }
        assertTrue(limits.totalWaitTime("b") > Duration.ZERO)
    }

    @Test
    fun `a tag with 0 slots fails at once, never after the timeout`() {
        limits.create("off", 0)
        val thrown = assertThrows(IllegalStateException::class.java) { limits.acquire(Duration.ofHours(1), "off") }
        assertTrue(thrown.message!!.contains("\"off\"") && thrown.message!!.contains("0 slots"), thrown.message)
        assertThrows(IllegalStateException::class.java) { loop.runSync<Int> { limits.withConcurrencyLimit("off") { 1 } } }
        limits.create("off", 3) // switched on again: none was held
        assertEquals(2, loop.runSync { limits.withConcurrencyLimit("off") { 2 } })
    }

    @Test
    fun `unknown tags, redefinitions and bad input get clear errors`() {
        limits.create("db", 2)
        limits.create("api", 1)
        val unknown = assertThrows(IllegalArgumentException::class.java) { limits.acquire(long, "dB") }
        assertTrue(unknown.message!!.contains("\"dB\"") && unknown.message!!.contains("\"api\", \"db\""), unknown.message)
        assertThrows(IllegalArgumentException::class.java) { limits.limited(object : SuspendCall<Int> {
            override fun invoke(continuation: kotlin.coroutines.Continuation<Int>): Any? = 1
        }, "nope") }
        limits.create("db", 2) // the same size: nothing changes
        limits.create("db", 4) // another size while none is held
        assertEquals(4, limits.stats().first { it.tag == "db" }.slots)
        limits.acquire(long, "db").use {
            val busy = assertThrows(IllegalStateException::class.java) { limits.create("db", 1) }
            assertTrue(busy.message!!.contains("\"db\"") && busy.message!!.contains("1 of them are held"), busy.message)
        }
        assertThrows(IllegalArgumentException::class.java) { limits.create(" ", 1) }
        val negative = assertThrows(IllegalArgumentException::class.java) { limits.create("x", -1) }
        assertTrue(negative.message!!.contains("slots"), negative.message)
        assertThrows(IllegalArgumentException::class.java) { limits.acquire(Duration.ZERO, "db") }
        val onLoop = assertThrows(IllegalStateException::class.java) { loop.runSync { limits.acquire(long, "db") } }
        assertTrue(onLoop.message!!.contains("withConcurrencyLimit"), onLoop.message)
    }

    @Test
    fun `no tags runs unlimited and touches nothing`() {
        assertEquals(7, loop.runSync { limits.withConcurrencyLimit { 7 } })
        limits.acquire(long).use { assertTrue(it.tags.isEmpty()) }
        assertTrue(limits.stats().isEmpty())
        assertEquals(3, loop.runSync { withConcurrencyLimit { 3 } })
    }

    @Test
    fun `a limited call obeys the limit wherever it runs, and the loop statistics show the limits`() {
        limits.create("svc", 1)
        val entered = CountDownLatch(1)
        val release = CompletableDeferred<Unit>()
        val body = object : SuspendCall<String> {
            val slow: suspend () -> String = { entered.countDown(); release.await(); "done" }
            override fun invoke(continuation: kotlin.coroutines.Continuation<String>): Any? =
                slow.startCoroutineUninterceptedOrReturn(continuation)
        }
        val limited = limits.limited(body, "svc")
        val first = loop.runAsync(limited)
        entered.await()
        val second = loop.runAsync(limited)
        awaitState("the second call waits") { limits.waiting("svc") == 1 }
        val stats = loop.stats().limits.single()
        assertEquals("svc", stats.tag)
        assertEquals(1, stats.occupied)
        assertEquals(1, stats.waiting)
        assertFalse(second.isDone)
        release.complete(Unit)
        assertEquals("done", first.get(10, TimeUnit.SECONDS))
        assertEquals("done", second.get(10, TimeUnit.SECONDS))
        assertEquals(0, limits.occupied("svc"))
    }
}
