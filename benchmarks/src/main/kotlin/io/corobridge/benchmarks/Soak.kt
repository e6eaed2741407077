package io.corobridge.benchmarks

import io.corobridge.core.RunSyncLoop
import io.corobridge.core.gather
import io.corobridge.core.launch
import io.corobridge.core.limits
import io.corobridge.core.onShutdown
import io.corobridge.core.openGather
import io.corobridge.core.runInWorkerThread
import java.lang.management.ManagementFactory
import java.time.Duration
import java.util.concurrent.CancellationException
import java.util.concurrent.TimeUnit
import java.util.concurrent.TimeoutException
import java.util.concurrent.atomic.AtomicBoolean
import java.util.concurrent.atomic.AtomicReference
import java.util.concurrent.atomic.LongAdder
import kotlin.concurrent.thread
import kotlin.random.Random
import kotlinx.coroutines.delay
import kotlinx.coroutines.yield

/**
 * A bounded soak run: mixed calls, gathers, limits, workers, background tasks, timeouts and cancellations on
 * one long-lived loop from 8 threads, while another thread keeps creating, using and closing loops of its own.
 * It samples heap after GC, live threads (all, and corobridge's) and process CPU at the start (after a
 * warm-up) and once a minute, and ends with a verdict on growth. Not a test: `benchmarks/soak.sh [minutes]`.
 *
 * Growth is judged between the first sample after warm-up and the last: heap after GC within 25 % (or 4 MiB),
 * corobridge's threads within the worker limit plus the loops' own, and the CPU per operation of the last minute
 * within 50 % of the first's. Exits with 1 on growth or an unexpected failure.
 */
object Soak {
    private val failures = LongAdder()
    private val firstFailure = AtomicReference<Throwable>()

    @JvmStatic
    fun main(args: Array<String>) {
        val minutes = args.firstOrNull()?.toDouble() ?: 10.0
        val warmupNanos = TimeUnit.SECONDS.toNanos(minOf(60L, (minutes * 60 / 5).toLong()))
        val start = System.nanoTime()
        val end = start + (minutes * 60e9).toLong()
        val loop = RunSyncLoop.create("soak")
        loop.workerLimit = 8
        loop.limits.create("db", 4)
        loop.failureHandler = Thread.UncaughtExceptionHandler { _, e -> unexpected(e) }
        val stop = AtomicBoolean()
        val ops = LongAdder()
        val churned = LongAdder()
        val callers = List(8) { c ->
            thread(name = "soak-caller-$c") {
                val random = Random(c)
                while (!stop.get()) {
                    try {
                        step(loop, random)
                    } catch (e: Throwable) {
                        unexpected(e)
                    }
                    ops.increment()
                }
            }
        }
        val churn = thread(name = "soak-churn") {
            var n = 0
            while (!stop.get()) {
                try {
                    churnOne(n++)
                } catch (e: Throwable) {
                    unexpected(e)
                }
                churned.increment()
            }
        }
        println("soak: ${"%.1f".format(minutes)} min, 8 callers on loop \"soak\" and one thread creating and closing loops")
        println("  minute  ops/s      heap after GC  threads  corobridge  CPU/op (µs)  loops churned  failures")
        val samples = ArrayList<Sample>()
        var nextSample = start + warmupNanos
        while (System.nanoTime() < end) {
            val wait = minOf(nextSample, end) - System.nanoTime()
            if (wait > 0) TimeUnit.NANOSECONDS.sleep(wait)
            if (System.nanoTime() < nextSample) continue
            val sample = Sample.take(ops.sum(), churned.sum())
            println(sample.line((sample.nanos - start) / 60e9, samples.lastOrNull()))
            samples.add(sample)
            nextSample += TimeUnit.MINUTES.toNanos(1)
        }
        // Every sample, the last too, is taken with the load running: same conditions, comparable. A run
        // shorter than warm-up plus a minute gets one more at its end, so that there are two to compare.
        if (samples.size < 2) {
            val final = Sample.take(ops.sum(), churned.sum())
            println(final.line((final.nanos - start) / 60e9, samples.lastOrNull()))
            samples.add(final)
        }
        stop.set(true)
        callers.forEach { it.join() }
        churn.join()
        loop.close(Duration.ofSeconds(5))
        val (verdict, grew) = verdict(samples)
        println(verdict)
        firstFailure.get()?.let { println("first unexpected failure:"); it.printStackTrace(System.out) }
        System.exit(if (grew) 1 else 0)
    }

    /** One operation of the mix, chosen at random. */
    private fun step(loop: RunSyncLoop, random: Random) {
        when (random.nextInt(10)) {
            0 -> loop.runSync { yield(); 1 }
            1 -> loop.runAsync { delay(1); 1 }.join()
            2 -> loop.runSync { gather(List(50) { i -> suspend { yield(); i } }) }
            3 -> loop.runSync { gather(List(200) { i -> suspend { i } }, maxConcurrency = 8) }
            4 -> loop.runSync { loop.limits.withConcurrencyLimit("db") { loop.runInWorkerThread { Thread.sleep(0, 200_000) } } }
            5 -> loop.launch { yield() }.let { if (random.nextBoolean()) it.cancel() }
            6 -> {
                val group = loop.openGather<Int>()
                val handles = List(10) { i -> group.fork { yield(); i } }
                loop.runSync { group.join() }
                check(handles.sumOf { it.get() } == 45)
            }
            7 -> try {
                // Usually times out; on a loaded machine the caller may wake only after the call has ended, and
                // then gets its result (documented: a result that arrives before the cancellation is returned).
                loop.runSync(kotlin.time.Duration.parse("1ms")) { delay(50) }
            } catch (_: TimeoutException) {
                // expected: the call was cancelled at its deadline
            }
            8 -> loop.runAsync { delay(10_000) }.cancel(false)
            else -> loop.runSync { loop.runInWorkerThread { loop.runSync { 2 } } }
        }
    }

    /** Creates a loop, uses its thread, a worker, a background task and a callback, and closes it. */
    private fun churnOne(n: Int) {
        val loop = RunSyncLoop.create("soak-churn-${n % 1000}")
        loop.failureHandler = Thread.UncaughtExceptionHandler { _, e -> unexpected(e) }
        loop.onShutdown { }
        loop.launch { delay(1) }
        loop.runSync { loop.runInWorkerThread { 1 } }
        val pending = loop.runAsync { delay(10_000) }
        loop.close(Duration.ofMillis(50))
        try {
            pending.join()
            error("a call in flight survived close")
        } catch (_: CancellationException) {
            // expected: close cancelled it while it ran
        } catch (refused: java.util.concurrent.CompletionException) {
            // also expected: it was still queued when close began, and was refused
            if (refused.cause !is IllegalStateException) throw refused
        }
    }

    private fun unexpected(e: Throwable) {
        failures.increment()
        firstFailure.compareAndSet(null, e)
    }

    private data class Sample(
        val nanos: Long,
        val heap: Long,
        val threads: Int,
        val ours: Int,
        val cpuNanos: Long,
        val ops: Long,
        val churned: Long,
    ) {
        /** A table row; the first sample (after warm-up) has no interval before it, so no rate. */
        fun line(minute: Double, before: Sample?): String {
            val rate = before?.let { "%9.0f".format((ops - it.ops) / ((nanos - it.nanos) / 1e9)) } ?: "%9s".format("-")
            val cpu = before?.let { "%11.2f".format(cpuPerOp(it, this)) } ?: "%11s".format("-")
            return "  %6.1f  %s  %10.1f MiB  %7d  %10d  %s  %13d  %8d".format(
                minute, rate, heap / 1048576.0, threads, ours, cpu, churned, failures.sum()
            )
        }

        companion object {
            fun take(ops: Long, churned: Long): Sample {
                repeat(3) { System.gc() }
                val os = ManagementFactory.getOperatingSystemMXBean() as com.sun.management.OperatingSystemMXBean
                val threads = Thread.getAllStackTraces().keys
                return Sample(
                    System.nanoTime(),
                    ManagementFactory.getMemoryMXBean().heapMemoryUsage.used,
                    threads.size,
                    threads.count { it.name.startsWith("corobridge-") },
                    os.processCpuTime,
                    ops,
                    churned,
                )
            }
        }
    }

    private fun cpuPerOp(from: Sample, to: Sample): Double {
        val done = to.ops - from.ops
        return if (done <= 0) 0.0 else (to.cpuNanos - from.cpuNanos) / 1000.0 / done
    }

    /** The verdict line, and whether anything grew (or failed). */
    private fun verdict(samples: List<Sample>): Pair<String, Boolean> {
        val first = samples.first()
        val last = samples.last()
        val cpuFirst = cpuPerOp(samples[0], samples[1])
        val cpuLast = cpuPerOp(samples[samples.size - 2], last)
        val heapOk = last.heap <= maxOf(first.heap * 5 / 4, first.heap + 4 * 1048576)
        // Idle workers retire after 10 s, so the count moves; it must stay within the soak loop's worker limit
        // plus the loop, the watchdog and a churned loop with one worker.
        val threadsOk = last.ours <= first.ours + 8 + 3
        val cpuOk = cpuLast <= cpuFirst * 1.5
        val ok = heapOk && threadsOk && cpuOk && failures.sum() == 0L
        return buildString {
            append("verdict: ")
            append(if (ok) "no growth" else "GROWTH OR FAILURE")
            append(
                (" (heap after GC %.1f -> %.1f MiB; corobridge threads %d -> %d; all threads %d -> %d; " +
                    "CPU per op %.2f -> %.2f µs; %d failures)").format(
                    first.heap / 1048576.0, last.heap / 1048576.0, first.ours, last.ours, first.threads, last.threads,
                    cpuFirst, cpuLast, failures.sum(),
                )
            )
        } to !ok
    }
}
