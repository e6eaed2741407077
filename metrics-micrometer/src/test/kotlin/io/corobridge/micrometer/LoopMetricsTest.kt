package io.corobridge.micrometer

import io.corobridge.core.RunSyncLoop
import io.corobridge.core.launch
import io.corobridge.core.limits
import io.corobridge.core.runInWorkerThread
import io.corobridge.core.withConcurrencyLimit
import io.micrometer.core.instrument.Meter
import io.micrometer.core.instrument.MeterRegistry
import io.micrometer.core.instrument.Tags
import io.micrometer.core.instrument.simple.SimpleMeterRegistry
import java.time.Duration
import java.util.concurrent.CountDownLatch
import java.util.concurrent.TimeUnit
import kotlin.concurrent.thread
import kotlinx.coroutines.CompletableDeferred
import org.junit.jupiter.api.AfterEach
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test

/** The meters against a real loop doing real work: each figure is made to move, and the meter must show it. */
class LoopMetricsTest {
    private val loop = RunSyncLoop.create("metered")
    private val registry = SimpleMeterRegistry()
    private val threads = ArrayList<Thread>()

    @AfterEach
    fun closeAll() {
        loop.close()
        threads.forEach { it.join(TimeUnit.SECONDS.toMillis(10)) }
        assertTrue(threads.none { it.isAlive }, "test threads left running")
        registry.close()
    }

    private fun gauge(name: String, vararg tags: String): Double =
        registry.get(name).tags("loop", "metered", "service", "billing", *tags).gauge().value()

    private fun counter(name: String, vararg tags: String): Double =
        registry.get(name).tags("loop", "metered", "service", "billing", *tags).functionCounter().count()

    private fun timeGauge(name: String): Double =
        registry.get(name).tags("loop", "metered", "service", "billing").timeGauge().value(TimeUnit.SECONDS)

    private fun awaitState(what: String, condition: () -> Boolean) {
        val deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10)
        while (!condition()) {
            check(System.nanoTime() < deadline) { "never reached: $what" }
            Thread.onSpinWait()
        }
    }

    private fun background(name: String, work: () -> Unit): Thread = thread(name = name) { work() }.also { threads += it }

    @Test
    fun `calls, queue, lag, workers and background tasks move their meters`() {
        LoopMetrics(loop, Tags.of("service", "billing")).bindTo(registry)
        loop.workerLimit = 1
        loop.stallThreshold = null // this test holds the loop thread on purpose
        val callsBefore = counter("corobridge.loop.calls")
        repeat(5) { n -> assertEquals(n, loop.runSync { n }) }
        assertEquals(callsBefore + 5, counter("corobridge.loop.calls"), "every call counted")

        val gate = CompletableDeferred<Unit>()
        val caller = background("in-flight") { loop.runSync { gate.await() } }
        val task = loop.launch { gate.await() }
        awaitState("one call in flight") { gauge("corobridge.loop.calls.active") == 1.0 }
        assertEquals(1.0, gauge("corobridge.loop.background.tasks"))

        val workersIn = CountDownLatch(1)
        val releaseWorkers = CountDownLatch(1)
        val workerCalls = List(2) {
            loop.runAsync { runInWorkerThread { workersIn.countDown(); check(releaseWorkers.await(10, TimeUnit.SECONDS)) } }
        }
        workersIn.await()
        awaitState("one worker busy, one waiting") { gauge("corobridge.workers.waiting") == 1.0 }
        assertEquals(1.0, gauge("corobridge.workers.busy"))
        assertEquals(1.0, gauge("corobridge.workers.limit"))
        assertTrue(gauge("corobridge.workers.threads") >= 1.0)
        releaseWorkers.countDown()
        workerCalls.forEach { it.join() }

        // Hold the loop thread: tasks queue behind it, and the lag probe waits with them.
        val holding = CountDownLatch(1)
        val release = CountDownLatch(1)
        val holder = loop.runAsync { holding.countDown(); check(release.await(10, TimeUnit.SECONDS)) }
        holding.await()
        timeGauge("corobridge.loop.lag") // posts a probe, which now waits behind the held thread
        val queued = List(3) { loop.runAsync { it } }
        assertEquals(4.0, gauge("corobridge.loop.tasks.queued"), "3 calls and the probe")
        val first = timeGauge("corobridge.loop.lag")
        awaitState("the probe has waited longer") { timeGauge("corobridge.loop.lag") > first }
        release.countDown()
        holder.join()
        queued.forEach { it.join() }
        gate.complete(Unit)
        caller.join()
        task.completion.join()
        awaitState("nothing in flight") { gauge("corobridge.loop.calls.active") == 0.0 }
        // A background task leaves the count just after its completion is signalled: wait for it, bounded.
        awaitState("no background task") { gauge("corobridge.loop.background.tasks") == 0.0 }
    }

    @Test
    fun `a stall is counted with its length`() {
        LoopMetrics(loop, Tags.of("service", "billing")).bindTo(registry)
        loop.stallThreshold = Duration.ofMillis(50)
        assertEquals(0.0, counter("corobridge.loop.stalls"))
        val release = CountDownLatch(1)
        val holder = loop.runAsync { check(release.await(10, TimeUnit.SECONDS)) } // a blocking wait on the loop: a stall
        awaitState("the watchdog reported the stall") { counter("corobridge.loop.stalls") == 1.0 }
        release.countDown()
        holder.join()
        awaitState("the stall's length is known") { timeGauge("corobridge.loop.stall.max") >= 0.05 }
    }

    @Test
    fun `each limit has its meters, also one defined after binding`() {
        loop.limits.create("db", 1)
        LoopMetrics(loop, Tags.of("service", "billing")).bindTo(registry)
        loop.limits.create("api", 2)
        assertEquals(null, registry.find("corobridge.limit.slots").tag("limit", "api").gauge(), "not yet read")
        assertEquals(2.0, gauge("corobridge.loop.limits"))
        assertEquals(2.0, gauge("corobridge.limit.slots", "limit", "api"), "bound by that read")
        assertEquals(1.0, gauge("corobridge.limit.slots", "limit", "db"))

        val held = CompletableDeferred<Unit>()
        val release = CompletableDeferred<Unit>()
        val holder = loop.runAsync { withConcurrencyLimit("db") { held.complete(Unit); release.await() } }
        loop.runSync { held.await() }
        val waiter = loop.runAsync { withConcurrencyLimit("db") { } }
        awaitState("a caller waits for db") { gauge("corobridge.limit.waiting", "limit", "db") == 1.0 }
        assertEquals(1.0, gauge("corobridge.limit.held", "limit", "db"))
        val waitBefore = counter("corobridge.limit.wait", "limit", "db")
        release.complete(Unit)
        holder.join()
        waiter.join()
        assertTrue(counter("corobridge.limit.wait", "limit", "db") > waitBefore, "the wait was added up")
        assertEquals(0.0, gauge("corobridge.limit.held", "limit", "db"))
        val meter: Meter = registry.get("corobridge.limit.wait").tag("limit", "db").meter()
        assertEquals("seconds", meter.id.baseUnit)
    }

    @Test
    fun `a closed loop reads as NaN lag and zeros, without failing the scrape`() {
        LoopMetrics(loop, Tags.of("service", "billing")).bindTo(registry)
        loop.runSync { 1 }
        loop.close()
        assertTrue(timeGauge("corobridge.loop.lag").isNaN())
        assertEquals(0.0, gauge("corobridge.loop.calls.active"))
        registry.meters.forEach { meter -> meter.measure().forEach { it.value } } // what a scrape does: no throw
    }

    @Test
    fun `a binder nobody keeps goes on working after garbage collections`() {
        bindAndForget()
        loop.limits.create("late", 4)
        repeat(3) { System.gc() } // the binder is reachable from the registry only
        timeGauge("corobridge.loop.lag") // posts a probe
        awaitState("the lag is measured") { !timeGauge("corobridge.loop.lag").isNaN() }
        assertEquals(1.0, gauge("corobridge.loop.limits"), "its limits gauge still reads, and binds new limits")
        assertEquals(4.0, gauge("corobridge.limit.slots", "limit", "late"))
    }

    /** As the docs write it: `new LoopMetrics(loop).bindTo(registry)`, with no reference kept. */
    private fun bindAndForget() {
        LoopMetrics(loop, Tags.of("service", "billing")).bindTo(registry)
    }

    @Test
    fun `one binder serves two registries`() {
        val other: MeterRegistry = SimpleMeterRegistry()
        val metrics = LoopMetrics(loop, Tags.of("service", "billing"))
        metrics.bindTo(registry)
        metrics.bindTo(other)
        loop.limits.create("db", 3)
        assertEquals(1.0, other.get("corobridge.loop.limits").gauge().value())
        assertEquals(3.0, other.get("corobridge.limit.slots").tag("limit", "db").gauge().value())
        assertEquals(1.0, gauge("corobridge.loop.limits"))
        assertEquals(3.0, gauge("corobridge.limit.slots", "limit", "db"))
        other.close()
    }
}
