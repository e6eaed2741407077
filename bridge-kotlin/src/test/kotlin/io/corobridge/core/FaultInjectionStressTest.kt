package io.corobridge.core

import java.time.Duration
import java.util.concurrent.CancellationException
import java.util.concurrent.CompletableFuture
import java.util.concurrent.CountDownLatch
import java.util.concurrent.CyclicBarrier
import java.util.concurrent.LinkedBlockingQueue
import java.util.concurrent.ThreadLocalRandom
import java.util.concurrent.TimeUnit
import java.util.concurrent.atomic.AtomicInteger
import java.util.concurrent.atomic.AtomicReference
import kotlin.concurrent.thread
import kotlin.time.Duration.Companion.seconds
import kotlinx.coroutines.CompletableDeferred
import kotlinx.coroutines.NonCancellable
import kotlinx.coroutines.awaitCancellation
import kotlinx.coroutines.withContext
import kotlinx.coroutines.yield
import org.junit.jupiter.api.AfterEach
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertNull
import org.junit.jupiter.api.Assertions.assertSame
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Assertions.fail
import org.junit.jupiter.api.Test

/**
 * Fault injection: hostile exceptions through every path that completes or reports something, code that
 * ignores cancellation at every wait, interrupts sent to every thread the library owns and to callers at every
 * wait, and close() from every kind of thread. Each case checks what must hold whatever the fault: the result
 * or the very exception reaches whoever waits for it, nothing is left in flight, no thread outlives its loop.
 *
 * Slow and racy by design (thousands of rounds, random timing): runs in the stress profile only.
 */
class FaultInjectionStressTest {
    @AfterEach
    fun noThreadsLeft() {
        awaitState("the fault loops' threads end") {
            liveThreads("corobridge-loop-fault-").isEmpty() && liveThreads("corobridge-worker-fault-").isEmpty()
        }
    }

    /** The failures every path must carry unchanged. */
    private fun hostileFailures(): List<Throwable> {
        val cycleA = IllegalStateException("a")
        val cycleB = IllegalArgumentException("b", cycleA)
        cycleA.initCause(cycleB)
        return listOf(
            HostileException(),
            cycleA,
            object : RuntimeException("no suppression", null, false, false) {},
            AssertionError("an Error, not an Exception"),
            java.io.IOException("checked, undeclared"),
        )
    }

    private fun <T> loop(name: String, block: (RunSyncLoop) -> T): T {
        val loop = RunSyncLoop.create("fault-$name")
        loop.closing.closeGraceNanos = TimeUnit.MILLISECONDS.toNanos(500)
        try {
            return block(loop)
        } finally {
            loop.close(Duration.ZERO)
        }
    }

    private fun thrownBy(block: () -> Any?): Throwable? = try {
        block()
        null
    } catch (t: Throwable) {
        t
    }

    /**
     * [actual] is [expected], or, where a coroutine resumed with it, the copy kotlinx makes in debug mode (on
     * in tests, with assertions) to recover the stack trace, whose cause is [expected].
     */
    private fun assertCarried(expected: Throwable, actual: Throwable?, path: String) {
        if (actual !== expected && actual?.cause !== expected) fail<Unit>("$path: got ${actual?.javaClass}, not the failure")
    }

    private fun CompletableFuture<*>.failure(): Throwable? = handle { _, e -> e }.get(10, TimeUnit.SECONDS)

    @Test
    fun `hostile exceptions reach every waiter unchanged and every report survives them`() = loop("hostile") { loop ->
        val reported = LinkedBlockingQueue<Throwable>()
        loop.failureHandler = Thread.UncaughtExceptionHandler { _, e -> reported.add(e) }
        loop.limits.create("fault", 1)
        repeatRounds(200) {
            for (failure in hostileFailures()) {
                val fail: suspend () -> Nothing = { yield(); throw failure }
                assertSame(failure, thrownBy { loop.runSync { fail() } }, "runSync")
                assertSame(failure, thrownBy { loop.runSync(10.seconds) { fail() } }, "runSync with a timeout")
                assertSame(failure, loop.runAsync { fail() }.failure(), "runAsync")
                assertSame(failure, loop.runAsync<Int> { throw failure }.failure(), "runAsync, failing at once")
                assertCarried(failure, thrownBy { loop.runSync { loop.runInWorkerThread { throw failure } } }, "worker")
                assertSame(failure, thrownBy { loop.runSync { gather(listOf({ 1 }, fail, { awaitCancellation() })) } }, "gather")
                assertSame(failure, thrownBy { loop.runSync { gather(List(5) { fail }, 2) } }, "bounded gather")
                assertSame(failure, thrownBy {
                    loop.runSync { loop.limits.withConcurrencyLimit("fault") { fail() } }
                }, "limit")
                val group = loop.openGather<Int>()
                group.fork { fail() }
                assertSame(failure, thrownBy { loop.runSync { group.join() } }, "gather group")
                val task = loop.launch { fail() }
                assertSame(failure, task.completion.failure(), "background task")
                assertSame(failure, reported.poll(10, TimeUnit.SECONDS), "the task's failure is reported")
                // A future completed from outside with it: the call behind it is cancelled.
                val started = CompletableDeferred<Unit>()
                val cancelled = CompletableDeferred<Unit>()
                val outside = loop.runAsync {
                    try {
                        started.complete(Unit)
                        awaitCancellation()
                    } finally {
                        cancelled.complete(Unit)
                    }
                }
                loop.runSync { started.await() }
                outside.completeExceptionally(failure)
                loop.runSync { cancelled.await() }
            }
            assertEquals(0, loop.limits.occupied("fault"))
        }
        // A failure handler that throws a hostile exception itself: logged, and the loop goes on.
        loop.failureHandler = Thread.UncaughtExceptionHandler { _, _ -> throw HostileException() }
        LogCapture().use {
            repeat(100) { assertSame(HostileException::class.java, loop.launch { throw HostileException() }.completion.failure()?.javaClass) }
        }
        awaitState("nothing is left in flight") { loop.stats().let { it.callsInFlight == 0L && it.backgroundTasks == 0 } }
        assertEquals(1, loop.runSync { 1 })
        // Shutdown callbacks that throw hostile exceptions: each reported, all of them run.
        val ran = AtomicInteger()
        loop.failureHandler = Thread.UncaughtExceptionHandler { _, e -> reported.add(e) }
        reported.clear()
        repeat(5) { loop.onShutdown { ran.incrementAndGet(); throw HostileException() } }
        loop.close(Duration.ZERO)
        assertEquals(5, ran.get())
        assertEquals(5, reported.size)
    }

    @Test
    fun `code that ignores cancellation cannot hold a waiter past its documented bound`() {
        repeatRounds(20) { round ->
            val loop = RunSyncLoop.create("fault-ignore-$round")
            loop.closing.closeGraceNanos = TimeUnit.MILLISECONDS.toNanos(200)
            loop.closing.callbacksBudgetNanos = TimeUnit.MILLISECONDS.toNanos(200)
            val resume = CompletableDeferred<Unit>()
            val entered = CountDownLatch(3)
            val callers = List(2) {
                val got = AtomicReference<Throwable>()
                got to thread(name = "fault-ignore-caller") {
                    got.set(thrownBy { loop.runSync { withContext(NonCancellable) { entered.countDown(); resume.await() } } })
                }
            }
            loop.launch { withContext(NonCancellable) { entered.countDown(); resume.await() } }
            val callbackRan = AtomicInteger()
            loop.onShutdown { callbackRan.incrementAndGet() }
            assertTrue(entered.await(10, TimeUnit.SECONDS))
            val start = System.nanoTime()
            LogCapture().use { loop.close(Duration.ofMillis(100)) }
            val took = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start)
            assertTrue(took < 5_000, "close took $took ms with a budget of 0.1 + 0.2 + 0.2 s")
            for ((got, caller) in callers) {
                caller.join(10_000)
                assertTrue(got.get() is IllegalStateException, "a caller of an abandoned call is released: ${got.get()}")
            }
            assertEquals(1, callbackRan.get())
            resume.complete(Unit) // let the abandoned coroutines end
        }
    }

    @Test
    fun `interrupts sent to every library thread change no result`() = loop("interrupts") { loop ->
        loop.workerLimit = 4
        loop.stallThreshold = Duration.ofMillis(20)
        val stop = java.util.concurrent.atomic.AtomicBoolean()
        val interrupter = thread(name = "fault-interrupter") {
            while (!stop.get()) {
                for (t in liveThreads("corobridge-loop-fault-interrupts") + liveThreads("corobridge-worker-fault-interrupts") +
                    liveThreads("corobridge-watchdog")) {
                    t.interrupt()
                }
                Thread.yield()
            }
        }
        try {
            LogCapture().use {
                val sum = AtomicInteger()
                val callers = List(4) { c ->
                    thread(name = "fault-interrupts-caller-$c") {
                        repeat(2_000) { i ->
                            val value = loop.runSync {
                                yield()
                                if (i % 10 == 0) loop.runInWorkerThread { i } else i
                            }
                            sum.addAndGet(value)
                        }
                    }
                }
                callers.forEach { it.join() }
                assertEquals(4 * (0 until 2_000).sum(), sum.get())
            }
            assertEquals(1, liveThreads("corobridge-watchdog").size, "the watchdog survived")
        } finally {
            stop.set(true)
            interrupter.join()
        }
    }

    @Test
    fun `an interrupted caller gets its value or a CancellationException with its flag set, at any moment`() =
        loop("caller-interrupts") { loop ->
            loop.limits.create("fault", 2)
            val outcomes = AtomicInteger()
            repeatRounds(3_000) { round ->
                val result = AtomicReference<Any?>()
                val flag = AtomicReference<Boolean>()
                val caller = thread(name = "fault-caller") {
                    result.set(
                        try {
                            when (round % 3) {
                                0 -> loop.runSync { yield(); round }
                                1 -> loop.runAsync { yield(); round }.get()
                                else -> loop.limits.acquire(Duration.ofSeconds(10), "fault").use { round }
                            }
                        } catch (e: Throwable) {
                            e
                        }
                    )
                    flag.set(Thread.currentThread().isInterrupted)
                }
                repeat(ThreadLocalRandom.current().nextInt(200)) { Thread.onSpinWait() }
                caller.interrupt()
                caller.join()
                when (val r = result.get()) {
                    round -> outcomes.incrementAndGet()
                    is CancellationException, is InterruptedException, is java.util.concurrent.ExecutionException ->
                        if (r is CancellationException) assertTrue(flag.get(), "flag set again after $r")
                    else -> fail<Unit>("round $round: unexpected outcome $r")
                }
            }
            awaitState("nothing is left in flight") { loop.stats().callsInFlight == 0L }
            assertEquals(0, loop.limits.occupied("fault"))
            assertTrue(outcomes.get() > 0)
        }

    @Test
    fun `close from every kind of thread ends the loop and throws nothing`() {
        val kinds = listOf("plain", "loop", "worker", "callback", "background", "reentry", "concurrent")
        for (kind in kinds) {
            repeatRounds(20) { round ->
                val loop = RunSyncLoop.create("fault-close-$kind-$round")
                loop.closing.closeGraceNanos = TimeUnit.MILLISECONDS.toNanos(500) // a slow close fails the 60 s timeout
                loop.runSync { }
                val thrown = LinkedBlockingQueue<Throwable>()
                fun closeHere() {
                    try {
                        loop.close(Duration.ZERO)
                    } catch (t: Throwable) {
                        thrown.add(t)
                    }
                }
                when (kind) {
                    "plain" -> closeHere()
                    // The call that closes its own loop is cancelled by it, like every call in flight.
                    "loop" -> thrownBy { loop.runSync { closeHere() } }
                    "worker" -> thrownBy { loop.runSync { loop.runInWorkerThread { closeHere() } } }
                    "callback" -> {
                        loop.onShutdown { closeHere() }
                        closeHere()
                    }
                    "background" -> {
                        loop.launch { closeHere() }.completion.handle { _, _ -> }.get(10, TimeUnit.SECONDS)
                    }
                    "reentry" -> thrownBy { loop.runSync { loop.runSync { closeHere() } } }
                    "concurrent" -> {
                        val barrier = CyclicBarrier(8)
                        List(8) { thread { barrier.await(); closeHere() } }.forEach { it.join() }
                    }
                }
                assertNull(thrown.peek(), "$kind: close threw ${thrown.peek()}")
                assertTrue(loop.isClosed)
                awaitState("$kind: the loop's threads end") {
                    liveThreads("corobridge-loop-fault-close-$kind-$round").isEmpty() &&
                        liveThreads("corobridge-worker-fault-close-$kind-$round").isEmpty()
                }
            }
        }
    }
}
