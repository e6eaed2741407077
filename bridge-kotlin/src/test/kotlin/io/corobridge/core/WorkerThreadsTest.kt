package io.corobridge.core

import kotlin.time.Duration.Companion.seconds

import java.util.concurrent.CompletableFuture

import java.util.concurrent.CancellationException
import java.util.concurrent.ConcurrentLinkedQueue
import java.util.concurrent.CountDownLatch
import java.util.concurrent.TimeUnit
import java.util.concurrent.atomic.AtomicBoolean
import java.util.concurrent.atomic.AtomicInteger
import java.util.concurrent.atomic.AtomicReference
import java.util.logging.Level
import kotlinx.coroutines.CompletableDeferred
import kotlinx.coroutines.CoroutineStart
import kotlinx.coroutines.async
import kotlinx.coroutines.coroutineScope
import kotlinx.coroutines.launch
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertInstanceOf
import org.junit.jupiter.api.Assertions.assertNull
import org.junit.jupiter.api.Assertions.assertSame
import org.junit.jupiter.api.Assertions.assertThrows
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.extension.RegisterExtension

/** Blocking code on worker threads: the limiter, abandonment, the marks, calls back into the loop. */
class WorkerThreadsTest {
    @JvmField
    @RegisterExtension
    val loops = TestLoops()
    private val loop = loops.create("workers")

    /** A latch wait that cannot hang a worker for good. */
    private fun CountDownLatch.within(what: String) {
        check(await(10, TimeUnit.SECONDS)) { "timed out waiting for $what" }
    }

    @Test
    fun `200 concurrent blocking calls never run more than the limit at once`() {
        loop.workerLimit = 5
        repeatRounds(3) {
            val running = AtomicInteger()
            val most = AtomicInteger()
            val fiveAtOnce = CountDownLatch(1)
            val done = loop.runSync {
                coroutineScope {
                    val results = (1..200).map { i ->
                        async {
                            loop.runInWorkerThread {
                                val now = running.incrementAndGet()
                                most.accumulateAndGet(now) { a, b -> maxOf(a, b) }
                                if (now == 5) fiveAtOnce.countDown()
                                // Every block holds its slot until five have run at once: without the
                                // limiter, far more than five would be running by then.
                                fiveAtOnce.within("five blocks at once")
                                running.decrementAndGet()
                                i
                            }
                        }
                    }
                    results.sumOf { it.await() }
                }
            }
            assertEquals((1..200).sum(), done)
            assertEquals(5, most.get(), "most blocks running at once")
            assertEquals(0, loop.stats().workersBusy)
        }
    }

    @Test
    fun `an interrupted worker that lent its slot waits for it again before it goes on`() {
        loop.workerLimit = 1
        repeatRounds(5) {
            val lent = CountDownLatch(1)
            val secondRunning = CountDownLatch(1)
            val releaseSecond = CountDownLatch(1)
            val firstWorker = java.util.concurrent.atomic.AtomicReference<Thread>()
            val caught = java.util.concurrent.atomic.AtomicReference<Throwable>()
            val flagAfter = AtomicBoolean()
            val firstWentOn = AtomicBoolean()
            val busyWhenFirstWentOn = java.util.concurrent.atomic.AtomicInteger(-1)
            val first = loop.runAsync {
                loop.runInWorkerThread {
                    firstWorker.set(Thread.currentThread())
                    try {
                        loop.runSync { lent.countDown(); kotlinx.coroutines.awaitCancellation() }
                    } catch (e: Throwable) {
                        caught.set(e)
                        flagAfter.set(Thread.interrupted())
                    }
                    firstWentOn.set(true)
                    busyWhenFirstWentOn.set(loop.stats().workersBusy)
                }
            }
            lent.within("the first worker lends its slot")
            val second = loop.runAsync { loop.runInWorkerThread { secondRunning.countDown(); releaseSecond.await() } }
            secondRunning.within("the second worker takes the lent slot")
            firstWorker.get().interrupt()
            awaitState("the first worker waits for a slot again") {
                firstWorker.get().stackTrace.any { it.className.endsWith("CapacityLimiter") && it.methodName == "acquireBlocking" }
            }
            assertFalse(firstWentOn.get(), "the first worker went on without a slot while the second held it")
            releaseSecond.countDown()
            second.get(10, TimeUnit.SECONDS)
            first.get(10, TimeUnit.SECONDS)
            assertInstanceOf(java.util.concurrent.CancellationException::class.java, caught.get())
            assertTrue(flagAfter.get(), "the interrupt flag is set again")
            assertEquals(1, busyWhenFirstWentOn.get(), "only the first worker held a slot when it went on")
            awaitState("every slot is back") { loop.stats().workersBusy == 0 }
        }
    }

    @Test
    fun `close called on one of the loop's own workers finishes and throws nothing`() {
        repeatRounds(5) { round ->
            val own = RunSyncLoop.create("workers-own-close-$round")
            val thrown = AtomicReference<Throwable>()
            val closed = CountDownLatch(1)
            own.runAsync {
                own.runInWorkerThread {
                    try {
                        own.close()
                    } catch (e: Throwable) {
                        thrown.set(e)
                    }
                    closed.countDown()
                }
            }
            closed.within("close() returns on the worker")
            assertNull(thrown.get(), "close() threw on the worker: ${thrown.get()}")
            assertTrue(own.isClosed)
            awaitState("the loop's threads are gone") {
                liveThreads("corobridge-loop-workers-own-close-$round").isEmpty() &&
                    liveThreads("corobridge-worker-workers-own-close-$round").isEmpty()
            }
        }
    }

    @Test
    fun `calls waiting for a slot get it first come first served`() {
        loop.workerLimit = 1
        repeatRounds(5) {
            val holding = CompletableDeferred<Unit>()
            val release = CountDownLatch(1)
            val order = ConcurrentLinkedQueue<Int>()
            loop.runSync {
                coroutineScope {
                    launch { loop.runInWorkerThread { holding.complete(Unit); release.within("release") } }
                    holding.await()
                    // Started one after another on the loop, each reaches the limiter before the next starts.
                    repeat(10) { i -> launch(start = CoroutineStart.UNDISPATCHED) { loop.runInWorkerThread { order.add(i) } } }
                    assertEquals(10, loop.stats().workersWaiting)
                    release.countDown()
                }
            }
            assertEquals((0 until 10).toList(), order.toList())
        }
    }

    @Test
    fun `cancelling the caller abandons the worker at once, which keeps its slot until it ends`() {
        LogCapture().use { log ->
            repeatRounds(5) { round ->
                val entered = CompletableDeferred<Unit>()
                val release = CountDownLatch(1)
                val sawAbandoned = AtomicReference<Boolean>()
                val ended = CountDownLatch(1)
                val caught = loop.runSync {
                    val job = loop.scope.launch {
                        loop.runInWorkerThread<String> {
                            entered.complete(Unit)
                            release.within("release")
                            sawAbandoned.set(RunContext.isAbandoned)
                            ended.countDown()
                            check(round % 2 == 0) { "late failure" }
                            "late value"
                        }
                    }
                    entered.await()
                    job.cancel()
                    job.join() // returns while the worker is still blocked: it was abandoned, not awaited
                    job.isCancelled
                }
                assertTrue(caught)
                assertEquals(1L, ended.count, "the worker had not finished when the caller resumed")
                assertEquals(1, loop.stats().workersBusy, "the abandoned worker keeps its slot while it runs")
                release.countDown()
                ended.within("the abandoned worker")
                awaitState("the slot comes back") { loop.stats().workersBusy == 0 }
                assertEquals(true, sawAbandoned.get())
            }
            awaitState("the late failures are logged") { log.records.count { it.level == Level.FINE } == 3 }
            assertTrue(log.records.filter { it.level == Level.FINE }.all { it.thrown?.message == "late failure" })
        }
    }

    @Test
    fun `blocking code runs on a marked worker, and Bridge-style calls from it run on the loop`() {
        val seen = loop.runSync {
            assertTrue(RunContext.isOnLoopThread)
            loop.runInWorkerThread {
                val worker = Thread.currentThread()
                assertTrue(RunContext.isInWorkerThread)
                assertFalse(RunContext.isOnLoopThread)
                assertSame(loop, RunContext.currentLoop)
                assertTrue(worker.name.startsWith("corobridge-worker-workers-"), worker.name)
                assertTrue(worker.isDaemon)
                // Both ways back run on the loop's own thread, not on a new one, and block only this worker.
                val viaRunOnLoop = runOnLoop { Thread.currentThread() }
                val viaRunSync = loop.runSync { Thread.currentThread() }
                listOf(viaRunOnLoop, viaRunSync)
            }
        }
        assertEquals(listOf(loop.thread, loop.thread), seen)
        assertFalse(RunContext.isInWorkerThread)
        assertNull(RunContext.currentLoop)
    }

    @Test
    fun `loop to worker to loop nests at any depth, even with one slot`() {
        loop.workerLimit = 1
        fun descend(depth: Int): suspend () -> List<String> = {
            if (depth == 0) {
                listOf("bottom")
            } else {
                loop.runInWorkerThread {
                    val below = runOnLoop(descend(depth - 1))
                    listOf(if (RunContext.isInWorkerThread) "worker" else "?") + below
                }
            }
        }
        val chain = loop.runSync(descend(8))
        assertEquals(List(8) { "worker" } + "bottom", chain)
        assertEquals(0, loop.stats().workersBusy)
    }

    @Test
    fun `a worker waiting on a future of the loop lends its slot too, with join, get and a timed get`() {
        loop.workerLimit = 1
        val waits = listOf<(CompletableFuture<Int>) -> Int>({ it.join() }, { it.get() }, { it.get(10, TimeUnit.SECONDS) })
        for ((n, wait) in waits.withIndex()) {
            // The future's call needs a worker slot; the only one is held by the worker that waits for it.
            val result = loop.runSync(10.seconds) {
                runInWorkerThread { wait(loop.runAsync { runInWorkerThread { n } }) }
            }
            assertEquals(n, result, "wait form $n")
            assertEquals(0, loop.stats().workersBusy)
        }
    }

    @Test
    fun `runOnLoop elsewhere than on a worker is refused with advice`() {
        val outside = assertThrows(IllegalStateException::class.java) { runOnLoop<Int> { 1 } }
        assertTrue(outside.message!!.contains("worker thread"), outside.message)
        val onLoop = assertThrows(IllegalStateException::class.java) { loop.runSync { runOnLoop<Int> { 1 } } }
        assertTrue(onLoop.message!!.contains("runSync"), onLoop.message)
    }

    @Test
    fun `a failure in blocking code reaches the caller unchanged`() {
        val failure = java.io.IOException("disk on fire")
        val thrown = assertThrows(java.io.IOException::class.java) {
            loop.runSync { loop.runInWorkerThread { throw failure } }
        }
        // With assertions on (as in this build) kotlinx.coroutines' debug mode hands on a copy whose cause is
        // the original, to add the coroutine's frames; without them it is the very instance.
        assertTrue(thrown === failure || thrown.cause === failure, "got $thrown")
    }

    @Test
    fun `idle workers retire, and none is left after close`() {
        loop.workerPool.keepAliveNanos = TimeUnit.MILLISECONDS.toNanos(20)
        loop.runSync { loop.runInWorkerThread { } }
        awaitState("the idle worker retires") { loop.stats().workerThreads == 0 }
        // A worker stuck in blocking code at close is interrupted, and close waits for it to end.
        val entered = CountDownLatch(1)
        val interrupted = AtomicReference<Boolean>(false)
        loop.launch {
            loop.runInWorkerThread {
                entered.countDown()
                try {
                    CountDownLatch(1).await()
                } catch (_: InterruptedException) {
                    interrupted.set(true)
                }
            }
        }
        entered.within("the worker")
        loop.close(java.time.Duration.ZERO)
        assertNoThreads("corobridge-worker-workers")
        assertTrue(interrupted.get())
        assertThrows(IllegalStateException::class.java) { kotlinx.coroutines.runBlocking { loop.runInWorkerThread { } } }
    }

    @Test
    fun `bad settings are refused naming the setting`() {
        val limit = assertThrows(IllegalArgumentException::class.java) { loop.workerLimit = 0 }
        assertTrue(limit.message!!.contains("workerLimit") && limit.message!!.contains("0"), limit.message)
        assertEquals(40, loop.workerLimit)
        val zero = assertThrows(IllegalArgumentException::class.java) { loop.stallThreshold = java.time.Duration.ZERO }
        assertTrue(zero.message!!.contains("stallThreshold"), zero.message)
        assertThrows(IllegalArgumentException::class.java) { loop.stallThreshold = java.time.Duration.ofMillis(-1) }
        loop.stallThreshold = null
        assertNull(loop.stallThreshold)
    }

    @Test
    fun `raising the limit lets waiting calls in at once`() {
        loop.workerLimit = 1
        val release = CountDownLatch(1)
        val bothIn = CountDownLatch(2)
        loop.runSync {
            coroutineScope {
                repeat(2) {
                    launch(start = CoroutineStart.UNDISPATCHED) {
                        loop.runInWorkerThread { bothIn.countDown(); release.within("release") }
                    }
                }
                assertEquals(1, loop.stats().workersWaiting)
                loop.workerLimit = 3
                // The second block runs only if raising the limit let it in: at limit 1 this times out.
                loop.runInWorkerThread { bothIn.within("both blocks running") }
                release.countDown()
            }
        }
    }

    @Test
    fun `a call that waits for a slot and is cancelled takes none`() {
        loop.workerLimit = 1
        val release = CountDownLatch(1)
        loop.runSync {
            coroutineScope {
                val holder = launch(start = CoroutineStart.UNDISPATCHED) { loop.runInWorkerThread { release.within("release") } }
                val waiter = launch(start = CoroutineStart.UNDISPATCHED) { loop.runInWorkerThread { error("never runs") } }
                assertEquals(1, loop.stats().workersWaiting)
                waiter.cancel()
                waiter.join()
                assertEquals(0, loop.stats().workersWaiting)
                release.countDown()
                holder.join()
            }
        }
        awaitState("the slot comes back") { loop.stats().workersBusy == 0 }
        assertEquals("ok", loop.runSync { loop.runInWorkerThread { "ok" } })
    }

    @Test
    fun `the top-level form uses the loop the coroutine runs on`() {
        val where = loop.runSync { runInWorkerThread { RunContext.currentLoop } }
        assertSame(loop, where)
    }

    @Test
    fun `an abandoned worker that calls back into the loop is stopped`() {
        val entered = CompletableDeferred<Unit>()
        val release = CountDownLatch(1)
        val callback = AtomicReference<Throwable>()
        val finished = CountDownLatch(1)
        loop.runSync {
            val job = loop.scope.launch {
                loop.runInWorkerThread {
                    entered.complete(Unit)
                    release.within("release")
                    try {
                        runOnLoop { "never" }
                    } catch (e: Throwable) {
                        callback.set(e)
                    }
                    finished.countDown()
                }
            }
            entered.await()
            job.cancel()
            job.join()
        }
        release.countDown()
        finished.within("the worker")
        assertTrue(callback.get() is CancellationException, "got ${callback.get()}")
    }

}
