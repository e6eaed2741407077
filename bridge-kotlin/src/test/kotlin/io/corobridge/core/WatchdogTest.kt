package io.corobridge.core

import java.time.Duration
import java.util.concurrent.CountDownLatch
import java.util.concurrent.TimeUnit
import java.util.logging.Level
import java.util.logging.LogRecord
import jdk.jfr.Recording
import jdk.jfr.consumer.RecordingFile
import kotlin.concurrent.thread
import kotlinx.coroutines.CompletableDeferred
import kotlinx.coroutines.CoroutineStart
import kotlinx.coroutines.launch
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.extension.RegisterExtension
import org.junit.jupiter.api.io.TempDir

/** The watchdog reports a blocked loop with the blocking line; statistics and JFR events tell the same story. */
class WatchdogTest {
    @TempDir
    lateinit var dir: java.nio.file.Path

    @JvmField
    @RegisterExtension
    val loops = TestLoops()

    private inline fun <R> withLoop(name: String, block: (RunSyncLoop) -> R): R = block(loops.create(name))

    /** The offending line the report must point at: blocking code called on the loop thread. */
    private fun holdTheLoopThread(release: CountDownLatch) {
        check(release.await(10, TimeUnit.SECONDS)) { "never released" }
    }

    /** Every stall report for [loop]; on a loaded machine a JIT or GC pause can make one of its own. */
    private fun allStallReports(log: LogCapture, loop: RunSyncLoop): List<LogRecord> =
        log.records.filter { it.level == Level.WARNING && it.message.contains("loop \"${loop.name}\" has been busy") }

    /** The reports of the stalls this test made, which name the blocking method. */
    private fun stallReports(log: LogCapture, loop: RunSyncLoop): List<LogRecord> =
        allStallReports(log, loop).filter { it.message.contains("holdTheLoopThread") }

    /** CPU work on the loop thread: runnable all along, never blocked. */
    private fun spinOnTheLoopThread(release: java.util.concurrent.atomic.AtomicBoolean) {
        val deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10)
        while (!release.get() && System.nanoTime() - deadline < 0) Thread.onSpinWait()
    }

    @Test
    fun `a stall report says whether the loop thread is blocked or computing, and where`() = withLoop("stall-kind") { loop ->
        loop.stallThreshold = Duration.ofMillis(50)
        LogCapture().use { log ->
            val release = java.util.concurrent.atomic.AtomicBoolean()
            val caller = thread(name = "spin-caller") { loop.runSync { spinOnTheLoopThread(release) } }
            awaitState("the stall is reported") {
                allStallReports(log, loop).any { it.message.contains("spinOnTheLoopThread") }
            }
            release.set(true)
            caller.join()
            val report = allStallReports(log, loop).first { it.message.contains("spinOnTheLoopThread") }
            assertTrue(report.message.contains("is running in io.corobridge.core.WatchdogTest.spinOnTheLoopThread(WatchdogTest.kt:"), report.message)
            assertTrue(report.message.contains("without suspending"), report.message)
            assertTrue(!report.message.contains("is blocked"), report.message)

            val latch = CountDownLatch(1)
            val blocked = thread(name = "block-caller") { loop.runSync { holdTheLoopThread(latch) } }
            awaitState("the blocking stall is reported") { stallReports(log, loop).isNotEmpty() }
            latch.countDown()
            blocked.join()
            val blocking = stallReports(log, loop).first().message
            assertTrue(blocking.contains("is blocked (TIMED_WAITING)"), blocking)
            assertTrue(blocking.contains("runInWorkerThread"), blocking)
        }
    }

    @Test
    fun `a stall is reported once, with the blocking method in the loop thread's stack`() = withLoop("stall") { loop ->
        loop.stallThreshold = Duration.ofMillis(50)
        LogCapture().use { log ->
            repeatRounds(3) { round ->
                val release = CountDownLatch(1)
                val caller = thread(name = "stall-caller") { loop.runSync { holdTheLoopThread(release) } }
                awaitState("the stall is reported") { stallReports(log, loop).size == round }
                // Still stalled, and sampled several more times: no second report for the same stall.
                awaitState("the stall lasts four thresholds") { loop.stats().longestStall >= Duration.ofMillis(200L * round) }
                assertEquals(round, stallReports(log, loop).size)
                release.countDown()
                caller.join()
            }
            val report = stallReports(log, loop).first()
            val frames = report.thrown.stackTrace.map { "${it.className}.${it.methodName}" }
            assertTrue(frames.contains("io.corobridge.core.WatchdogTest.holdTheLoopThread"), frames.toString())
            assertTrue(report.message.contains("holdTheLoopThread"), report.message)
            assertTrue(report.message.contains("runInWorkerThread"), "the report says what to do instead")
            assertEquals(allStallReports(log, loop).size.toLong(), loop.stats().stalls)
            val stallsBefore = loop.stats().stalls
            // A call that suspends for long, and one whose worker blocks for long, are not stalls: the loop
            // thread is free meanwhile. Let four thresholds pass with both in flight.
            val gate = CompletableDeferred<Unit>()
            val releaseWorker = CountDownLatch(1)
            val waiter = thread(name = "suspended-caller") { loop.runSync { gate.await() } }
            val working = loop.runAsync { loop.runInWorkerThread { check(releaseWorker.await(10, TimeUnit.SECONDS)) } }
            awaitState("both calls are in flight") { loop.stats().let { it.callsInFlight == 2L && it.workersBusy == 1 } }
            val since = System.nanoTime()
            awaitState("four thresholds pass") { System.nanoTime() - since > TimeUnit.MILLISECONDS.toNanos(200) }
            gate.complete(Unit)
            releaseWorker.countDown()
            waiter.join()
            working.get(10, TimeUnit.SECONDS)
            assertEquals(stallsBefore, loop.stats().stalls)
        }
    }

    @Test
    fun `a loop whose watchdog is off is not reported however long it stalls`() = withLoop("quiet") { quiet ->
        withLoop("noisy") { noisy ->
            quiet.stallThreshold = null
            noisy.stallThreshold = Duration.ofMillis(20)
            LogCapture().use { log ->
                val release = CountDownLatch(1)
                val quietIn = CountDownLatch(1)
                val callers = listOf(
                    thread { quiet.runSync { quietIn.countDown(); holdTheLoopThread(release) } },
                    thread { quietIn.await(); noisy.runSync { holdTheLoopThread(release) } },
                )
                // The quiet loop stalls for longer than the noisy one, which the watchdog sees for 3 thresholds.
                awaitState("the noisy stall is long") { noisy.stats().longestStall >= Duration.ofMillis(60) }
                release.countDown()
                callers.forEach { it.join() }
                assertEquals(1, stallReports(log, noisy).size)
                assertEquals(0, allStallReports(log, quiet).size)
                assertEquals(0L, quiet.stats().stalls)
            }
        }
    }

    @Test
    fun `statistics add up while calls, tasks and workers are busy`() = withLoop("stats") { loop ->
        loop.workerLimit = 2
        loop.stallThreshold = null
        val workersIn = CountDownLatch(2)
        val releaseWorkers = CountDownLatch(1)
        val gate = CompletableDeferred<Unit>()
        // 3 blocking calls suspended on the gate, one background task holding 5 worker calls (2 run, 3 wait).
        val callers = List(3) { thread { loop.runSync { gate.await() } } }
        val task = loop.launch {
            kotlinx.coroutines.coroutineScope {
                repeat(5) {
                    launch(start = CoroutineStart.UNDISPATCHED) {
                        loop.runInWorkerThread { workersIn.countDown(); check(releaseWorkers.await(10, TimeUnit.SECONDS)) }
                    }
                }
            }
        }
        workersIn.await()
        awaitState("all calls in flight, all worker calls placed") {
            loop.stats().let { it.callsInFlight == 3L && it.workersWaiting == 3 }
        }
        var stats = loop.stats()
        assertEquals(2, stats.workersBusy, "$stats")
        assertEquals(3, stats.workersWaiting, "$stats")
        assertEquals(2, stats.workerLimit, "$stats")
        assertTrue(stats.workerThreads >= 2, "$stats")
        assertEquals(1, stats.backgroundTasks, "$stats")
        // Hold the loop thread, then queue work behind it: the queue depth shows it.
        val release = CountDownLatch(1)
        val holding = CountDownLatch(1)
        val holder = loop.runAsync { holding.countDown(); holdTheLoopThread(release) }
        holding.await()
        val queued = List(4) { loop.runAsync { it } }
        stats = loop.stats()
        assertEquals(4L, stats.queuedTasks, "$stats")
        assertEquals(3L + 1 + 4, stats.callsInFlight, "$stats")
        release.countDown()
        queued.forEach { it.join() }
        holder.join()
        gate.complete(Unit)
        callers.forEach { it.join() }
        releaseWorkers.countDown()
        task.completion.join()
        awaitState("everything ended") { loop.stats().let { it.callsInFlight == 0L && it.workersBusy == 0 && it.backgroundTasks == 0 } }
        assertEquals(0L, loop.stats().queuedTasks)
        assertEquals(3L + 1 + 4, loop.stats().callsStarted, "every call made, ended or not, and only calls")
    }

    @Test
    fun `queued tasks count the steps the loop dispatches to itself and those other threads dispatch`() =
        withLoop("steps") { loop ->
            loop.stallThreshold = null
            val release = CountDownLatch(1)
            val holding = CountDownLatch(1)
            val ran = java.util.concurrent.atomic.AtomicInteger()
            // Three steps dispatched on the loop thread (children launched there), then the thread is held.
            val holder = loop.runAsync {
                kotlinx.coroutines.coroutineScope {
                    repeat(3) { launch { ran.incrementAndGet() } }
                    holding.countDown()
                    holdTheLoopThread(release)
                }
            }
            holding.await()
            // Two steps dispatched from another thread while the loop is held.
            val outside = List(2) { kotlinx.coroutines.CoroutineScope(loop.dispatcher).launch { ran.incrementAndGet() } }
            assertEquals(5L, loop.stats().queuedTasks, "${loop.stats()}")
            release.countDown()
            holder.join()
            outside.forEach { job -> loop.runSync { job.join() } }
            assertEquals(5, ran.get())
            awaitState("the queue empty") { loop.stats().queuedTasks == 0L }
        }

    @Test
    fun `the watchdog's turns allocate nothing`() = withLoop("watchdog-bytes") { loop ->
        // JMH's count of what every thread allocates puts the watchdog's bytes on the calls of the moment.
        val threads = java.lang.management.ManagementFactory.getThreadMXBean() as? com.sun.management.ThreadMXBean
        org.junit.jupiter.api.Assumptions.assumeTrue(
            threads != null && threads.isThreadAllocatedMemorySupported, "no per-thread allocation counter"
        )
        threads!!.isThreadAllocatedMemoryEnabled = true
        loop.stallThreshold = Duration.ofMillis(4) // a turn every millisecond
        loop.runSync { "started" }
        val watchdog = liveThreads("corobridge-watchdog").single()
        val from = io.corobridge.core.internal.Watchdog.turns
        awaitState("the watchdog has taken 20 turns") { io.corobridge.core.internal.Watchdog.turns >= from + 20 }
        val before = threads.getThreadAllocatedBytes(watchdog.id)
        val start = io.corobridge.core.internal.Watchdog.turns
        awaitState("the watchdog has taken 200 more turns") { io.corobridge.core.internal.Watchdog.turns >= start + 200 }
        val bytes = threads.getThreadAllocatedBytes(watchdog.id) - before
        val turns = io.corobridge.core.internal.Watchdog.turns - start
        // A list copy, its iterator and a wait node per turn came to about 130 bytes.
        assertTrue(bytes < turns * 8, "$bytes bytes in $turns turns")
    }

    @Test
    fun `a recording that names no corobridge event records none, and leaves blocking calls at 64 bytes`() =
        withLoop("jfr-off") { loop ->
            val threads = java.lang.management.ManagementFactory.getThreadMXBean() as? com.sun.management.ThreadMXBean
            org.junit.jupiter.api.Assumptions.assumeTrue(
                threads != null && threads.isThreadAllocatedMemorySupported, "no per-thread allocation counter"
            )
            threads!!.isThreadAllocatedMemoryEnabled = true
            val answer = Any()
            val immediate = object : SuspendCall<Any> {
                override fun invoke(continuation: kotlin.coroutines.Continuation<Any>): Any = answer
            }
            repeat(30_000) { loop.runSync(immediate) }
            val file = dir.resolve("off.jfr")
            Recording().use { recording ->
                recording.start()
                repeat(100) { loop.runSync(immediate) }
                recording.stop()
                recording.dump(file)
            }
            assertEquals(0, RecordingFile.readAllEvents(file).count { it.eventType.name.startsWith("io.corobridge.") })
            // Once JFR has run, event classes are instrumented and the JIT no longer removed an unused event:
            // every call allocated 96 bytes instead of 64 while it made its event regardless.
            repeat(30_000) { loop.runSync(immediate) }
            val calls = 20_000
            val perCall = (1..3).minOf {
                val before = threads.currentThreadAllocatedBytes
                repeat(calls) { check(loop.runSync(immediate) === answer) }
                (threads.currentThreadAllocatedBytes - before) / calls.toDouble()
            }
            assertTrue(perCall <= 64.5, "a call allocated $perCall bytes on its caller's thread after a recording")
        }

    @Test
    fun `calls and stalls are recorded as JFR events`() = withLoop("jfr") { loop ->
        loop.stallThreshold = Duration.ofMillis(50)
        val file = dir.resolve("corobridge.jfr")
        LogCapture().use { log ->
            Recording().use { recording ->
                recording.enable("io.corobridge.Call")
                recording.enable("io.corobridge.Stall")
                recording.start()
                assertEquals(42, loop.runSync { 42 })
                val release = CountDownLatch(1)
                val caller = thread { loop.runSync { holdTheLoopThread(release) } }
                awaitState("the stall is reported") { stallReports(log, loop).isNotEmpty() }
                release.countDown()
                caller.join()
                awaitState("the watchdog has closed the stall") { loop.counters.stallStats.ended == loop.stats().stalls }
                recording.stop()
                recording.dump(file)
            }
        }
        val events = RecordingFile.readAllEvents(file).filter { it.getString("loop") == "jfr" }
        val calls = events.filter { it.eventType.name == "io.corobridge.Call" }
        val stalls = events.filter {
            it.eventType.name == "io.corobridge.Stall" && it.getString("loopStack").contains("holdTheLoopThread")
        }
        assertTrue(calls.size >= 2, "calls: $calls")
        assertEquals(1, stalls.size, "stalls: $stalls")
        assertTrue(stalls[0].getDuration("length") >= Duration.ofMillis(50), "${stalls[0]}")
    }
}
