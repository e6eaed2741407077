package io.corobridge.micrometer

import io.corobridge.core.LimitStats
import io.corobridge.core.RunSyncLoop
import io.micrometer.core.instrument.FunctionCounter
import io.micrometer.core.instrument.Gauge
import io.micrometer.core.instrument.MeterRegistry
import io.micrometer.core.instrument.Tag
import io.micrometer.core.instrument.Tags
import io.micrometer.core.instrument.TimeGauge
import io.micrometer.core.instrument.binder.MeterBinder
import java.util.concurrent.ConcurrentHashMap
import java.util.concurrent.TimeUnit
import java.util.concurrent.atomic.AtomicLong
import kotlin.coroutines.EmptyCoroutineContext

/**
 * A loop's figures as Micrometer meters: bind it to the registry a service already reports through.
 *
 * ```java
 * new LoopMetrics(loop).bindTo(registry);                       // or Tags.of("service", "billing") as well
 * ```
 *
 * Every meter is tagged `loop=<the loop's name>` and with the [tags] given. Gauges read [RunSyncLoop.stats]
 * when the registry reads them (a scrape, a publish), which costs a few counter sums and takes no lock of the
 * loop's; nothing runs between reads, and the binder starts no thread. The meters, as Prometheus names them:
 *
 * | meter | kind | what |
 * |---|---|---|
 * | `corobridge_loop_calls_active` | gauge | blocking and future calls made and not yet ended |
 * | `corobridge_loop_calls_total` | counter | calls made since the loop started (its rate: calls a second) |
 * | `corobridge_loop_tasks_queued` | gauge | tasks handed to the loop thread and not yet started |
 * | `corobridge_loop_lag_seconds` | gauge | how long a task waited for the loop thread (see below) |
 * | `corobridge_loop_stalls_total` | counter | stalls the watchdog reported |
 * | `corobridge_loop_stall_max_seconds` | gauge | the longest stall seen |
 * | `corobridge_loop_background_tasks` | gauge | background tasks (`launch`) not yet ended |
 * | `corobridge_workers_threads` | gauge | worker threads alive |
 * | `corobridge_workers_busy` | gauge | blocking calls holding a worker slot |
 * | `corobridge_workers_waiting` | gauge | blocking calls waiting for a worker slot |
 * | `corobridge_workers_limit` | gauge | the loop's worker limit |
 * | `corobridge_loop_limits` | gauge | named concurrency limits of the loop |
 * | `corobridge_limit_slots{limit=..}` | gauge | the limit's size (NaN for a limit kept in a shared store) |
 * | `corobridge_limit_held{limit=..}` | gauge | its slots held (by this JVM, for a shared store) |
 * | `corobridge_limit_waiting{limit=..}` | gauge | callers waiting for it (in this JVM) |
 * | `corobridge_limit_wait_seconds_total{limit=..}` | counter | the time callers spent waiting for it, summed (for a shared store, with the round trip to the database) |
 *
 * **Lag.** Each read of `corobridge.loop.lag` posts a no-op task to the loop and reports how long the previous
 * one waited before the loop thread ran it; while a task is still waiting, how long it has waited so far (so a
 * stuck loop shows a growing lag, not the last good figure). NaN before the first measurement and once the loop is
 * closed. The task is no call, so it counts in none of the call meters; it is a task, so `corobridge.loop.tasks.queued`
 * may include it while it waits (and reading the lag starts a loop not started yet).
 *
 * **Limits** created after [bindTo] get their meters at the next read of `corobridge.loop.limits`, which every
 * scrape or publish makes; so they appear one scrape later.
 *
 * The registry keeps the binder (no reference of yours is needed) but not the loop: keep the loop, as any user of
 * it does. Safe to use from any thread. Bind one `LoopMetrics` per loop (to any number of registries).
 *
 * @since 0.2
 */
public class LoopMetrics @JvmOverloads constructor(
    private val loop: RunSyncLoop,
    tags: Iterable<Tag> = emptyList(),
) : MeterBinder {
    private val tags: Tags = Tags.of(tags).and("loop", loop.name)
    private val limitsBound = ConcurrentHashMap<MeterRegistry, MutableSet<String>>()

    /** When the probe in flight was posted (System.nanoTime), or NO_PROBE. */
    private val probePosted = AtomicLong(NO_PROBE)

    /** The last probe's wait, in nanoseconds, or -1 before the first. */
    private val lastLagNanos = AtomicLong(-1)

    override fun bindTo(registry: MeterRegistry) {
        gauge(registry, "corobridge.loop.calls.active", "Blocking and future calls made and not yet ended") { callsInFlight.toDouble() }
        FunctionCounter.builder("corobridge.loop.calls", loop) { it.stats().callsStarted.toDouble() }
            .description("Blocking and future calls made since the loop started").tags(tags).register(registry)
        gauge(registry, "corobridge.loop.tasks.queued", "Tasks handed to the loop thread and not yet started") { queuedTasks.toDouble() }
        // Strong references to this binder: Micrometer holds a gauge's object weakly, and the usual
        // `new LoopMetrics(loop).bindTo(registry)` keeps no other reference (found by trying it: NaN after a GC).
        TimeGauge.builder("corobridge.loop.lag", this, TimeUnit.NANOSECONDS) { it.lagNanos() }.strongReference(true)
            .description("How long a task waited for the loop thread, measured at the previous read").tags(tags).register(registry)
        FunctionCounter.builder("corobridge.loop.stalls", loop) { it.stats().stalls.toDouble() }
            .description("Stalls the watchdog reported: one task holding the loop thread past the stall threshold")
            .tags(tags).register(registry)
        TimeGauge.builder("corobridge.loop.stall.max", loop, TimeUnit.NANOSECONDS) { it.stats().longestStall.toNanos().toDouble() }
            .description("The longest stall seen").tags(tags).register(registry)
        gauge(registry, "corobridge.loop.background.tasks", "Background tasks (launch) not yet ended") { backgroundTasks.toDouble() }
        gauge(registry, "corobridge.workers.threads", "Worker threads alive") { workerThreads.toDouble() }
        gauge(registry, "corobridge.workers.busy", "Blocking calls holding a worker slot") { workersBusy.toDouble() }
        gauge(registry, "corobridge.workers.waiting", "Blocking calls waiting for a worker slot") { workersWaiting.toDouble() }
        gauge(registry, "corobridge.workers.limit", "The loop's worker limit") { workerLimit.toDouble() }
        val bound = limitsBound.computeIfAbsent(registry) { ConcurrentHashMap.newKeySet() }
        Gauge.builder("corobridge.loop.limits", this) { it.bindLimits(registry, bound).toDouble() }.strongReference(true)
            .description("Named concurrency limits of the loop").tags(tags).register(registry)
        bindLimits(registry, bound)
    }

    private fun gauge(registry: MeterRegistry, name: String, description: String, value: io.corobridge.core.LoopStats.() -> Double) {
        Gauge.builder(name, loop) { it.stats().value() }.description(description).tags(tags).register(registry)
    }

    /** Registers the meters of limits not yet bound to [registry]; returns how many limits the loop has. */
    private fun bindLimits(registry: MeterRegistry, bound: MutableSet<String>): Int {
        val limits = loop.stats().limits
        for (limit in limits) {
            if (!bound.add(limit.tag)) continue
            val tag = limit.tag
            val limitTags = tags.and("limit", tag)
            fun figure(name: String, description: String, value: (LimitStats) -> Double) {
                Gauge.builder(name, loop) { l -> l.stats().limits.firstOrNull { it.tag == tag }?.let(value) ?: Double.NaN }
                    .description(description).tags(limitTags).register(registry)
            }
            figure("corobridge.limit.slots", "The limit's size (NaN if kept in a shared store)") {
                if (it.slots < 0) Double.NaN else it.slots.toDouble()
            }
            figure("corobridge.limit.held", "Slots of the limit held (by this JVM, for a shared store)") { it.occupied.toDouble() }
            figure("corobridge.limit.waiting", "Callers waiting for a slot of the limit (in this JVM)") { it.waiting.toDouble() }
            FunctionCounter.builder("corobridge.limit.wait", loop) { l ->
                l.stats().limits.firstOrNull { it.tag == tag }?.totalWaitTime?.toNanos()?.let { it / 1e9 } ?: Double.NaN
            }.description("The time callers spent waiting for the limit's slots, summed").baseUnit("seconds")
                .tags(limitTags).register(registry)
        }
        return limits.size
    }

    /** See the class: the previous probe's wait, or the one in flight's so far; posts a new probe if none is out. */
    private fun lagNanos(): Double {
        if (loop.isClosed) return Double.NaN
        val now = System.nanoTime()
        val posted = probePosted.get()
        if (posted != NO_PROBE) {
            val waiting = now - posted
            return maxOf(waiting, lastLagNanos.get()).toDouble()
        }
        if (probePosted.compareAndSet(NO_PROBE, now)) {
            // A loop closed meanwhile runs the task elsewhere (it never throws), and the next read says NaN.
            loop.dispatcher.dispatch(EmptyCoroutineContext) {
                lastLagNanos.set(System.nanoTime() - now)
                probePosted.set(NO_PROBE)
            }
        }
        return lastLagNanos.get().let { if (it < 0) Double.NaN else it.toDouble() }
    }

    private companion object {
        const val NO_PROBE = Long.MIN_VALUE
    }
}
