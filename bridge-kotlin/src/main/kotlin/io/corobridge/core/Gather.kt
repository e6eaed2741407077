package io.corobridge.core

import io.corobridge.core.internal.CallBodies
import java.util.Collections
import java.util.concurrent.atomic.AtomicInteger
import java.util.concurrent.atomic.AtomicReference
import kotlinx.coroutines.CancellationException
import kotlinx.coroutines.CoroutineStart
import kotlinx.coroutines.cancelChildren
import kotlinx.coroutines.currentCoroutineContext
import kotlinx.coroutines.ensureActive
import kotlinx.coroutines.isActive
import kotlinx.coroutines.launch
import kotlinx.coroutines.supervisorScope
import kotlinx.coroutines.yield

/**
 * Runs [calls] at once and returns their results in the order of the calls, `null` results included.
 *
 * The calls run as coroutines of the caller, on the caller's dispatcher (the loop's, when called through
 * [RunSyncLoop]). With [maxConcurrency], at most that many calls are started and unfinished at once, and a
 * call does not start before a slot is free: 10,000 calls with a bound of 8 hold at most 8 coroutines.
 *
 * The first call to fail cancels the calls still running, and once they have all finished, its exception is
 * rethrown unchanged; failures of other calls are attached to it as suppressed exceptions, and the
 * cancellations it caused are never what the caller sees. A call that ends with its own
 * [CancellationException] fails the gather like any other failure: a result is missing.
 *
 * Cancellable: if the calling coroutine is cancelled, every call is cancelled, and this throws
 * [CancellationException] once they have finished.
 *
 * @throws IllegalArgumentException if [maxConcurrency] is less than 1
 * @since 0.1
 */
public suspend fun <T> gather(calls: List<suspend () -> T>, maxConcurrency: Int = Int.MAX_VALUE): List<T> {
    requireConcurrency(maxConcurrency)
    return gatherAll(ArrayList<Any>(calls), maxConcurrency, settle = false)
}

/**
 * [gather] for calls in continuation-passing form, as Java writes them, packaged as one call for
 * [RunSyncLoop.runSync] or [RunSyncLoop.runAsync] to run. The list is copied here, so later changes to it do
 * not affect the gather.
 *
 * @throws IllegalArgumentException if [maxConcurrency] is less than 1
 * @since 0.1
 */
public fun <T> gatherCall(calls: List<SuspendCall<T>>, maxConcurrency: Int = Int.MAX_VALUE): SuspendCall<List<T>> {
    requireConcurrency(maxConcurrency)
    val copy = ArrayList<Any>(calls)
    return CallBodies.asCall { gatherAll<T>(copy, maxConcurrency, settle = false) }
}

/**
 * Runs [calls] at once and returns how each one ended, in the order of the calls: an [Outcome] holding its value
 * or the exception it threw, unchanged. Prefect's `asyncio.gather(..., return_exceptions=True)`.
 *
 * Every call runs to its end: a failure cancels nothing, and this returns once the last call has ended. Calls
 * run as coroutines of the caller, on the caller's dispatcher, and [maxConcurrency] bounds them as it does for
 * [gather]. A call that ends with a [CancellationException] of its own (not the gather's) is a failure like
 * any other; every [Throwable] a call throws is an outcome, errors included.
 *
 * Cancellable: if the calling coroutine is cancelled, every call still running is cancelled, calls not yet
 * started never start, and this throws [CancellationException] once they have finished.
 *
 * @throws IllegalArgumentException if [maxConcurrency] is less than 1
 * @since 0.2
 */
public suspend fun <T> gatherSettled(calls: List<suspend () -> T>, maxConcurrency: Int = Int.MAX_VALUE): List<Outcome<T>> {
    requireConcurrency(maxConcurrency)
    return gatherAll(ArrayList<Any>(calls), maxConcurrency, settle = true)
}

/**
 * [gatherSettled] for calls in continuation-passing form, as Java writes them, packaged as one call for
 * [RunSyncLoop.runSync] or [RunSyncLoop.runAsync] to run. The list is copied here.
 *
 * @throws IllegalArgumentException if [maxConcurrency] is less than 1
 * @since 0.2
 */
public fun <T> gatherSettledCall(
    calls: List<SuspendCall<T>>,
    maxConcurrency: Int = Int.MAX_VALUE,
): SuspendCall<List<Outcome<T>>> {
    requireConcurrency(maxConcurrency)
    val copy = ArrayList<Any>(calls)
    return CallBodies.asCall { gatherAll<Outcome<T>>(copy, maxConcurrency, settle = true) }
}


private fun requireConcurrency(maxConcurrency: Int) {
    require(maxConcurrency >= 1) { "maxConcurrency must be at least 1, was $maxConcurrency" }
}

/**
 * Runs the calls ([SuspendCall]s or suspend lambdas) with at most [maxConcurrency] workers, each taking
 * the next unstarted call until none is left or one has failed; or, if [settle], until none is left, each
 * result an [Outcome] (then [R] is `Outcome<T>`).
 */
private suspend fun <R> gatherAll(calls: List<Any>, maxConcurrency: Int, settle: Boolean): List<R> {
    if (calls.isEmpty()) return emptyList()
    val results = arrayOfNulls<Any?>(calls.size)
    val failure = FirstFailure()
    val next = AtomicInteger()
    supervisorScope {
        val group = this
        // Yields once a slice is used up (see SLICE_NANOS), reading the clock only every CHECK_EVERY starts or
        // calls. One slice for the whole gather: a worker that finds it used up marks it so (0) before it
        // yields, and the loop that starts the workers, to which an undispatched worker returns when it
        // suspends, yields too instead of starting the next one in the same task.
        var sliceStart = System.nanoTime()
        var starts = 0
        repeat(minOf(maxConcurrency, calls.size)) {
            // Undispatched: each worker starts its first call right here, in order, without a trip through
            // the dispatcher's queue; the next worker starts when this one first suspends.
            launch(start = CoroutineStart.UNDISPATCHED) {
                var ran = 0
                while (!failure.happened && isActive) {
                    val index = next.getAndIncrement()
                    if (index >= calls.size) break
                    try {
                        val value = CallBodies.run<Any?>(calls[index])
                        results[index] = if (settle) Outcome.success(value) else value
                    } catch (e: Throwable) {
                        if (settle) {
                            // The gather's own cancellation ends the worker; a call's own is its outcome.
                            currentCoroutineContext().ensureActive()
                            results[index] = Outcome.failure<Any?>(e)
                        } else {
                            if (failure.record(e)) {
                                group.coroutineContext.cancelChildren(CancellationException("another call in the gather failed", e))
                            }
                            break
                        }
                    }
                    // Calls that return without suspending run one after another here, but not forever.
                    if (++ran % CHECK_EVERY == 0 && System.nanoTime() - sliceStart >= SLICE_NANOS) {
                        sliceStart = 0L
                        yield()
                        sliceStart = System.nanoTime()
                    }
                }
            }
            if (sliceStart == 0L || (++starts % CHECK_EVERY == 0 && System.nanoTime() - sliceStart >= SLICE_NANOS)) {
                yield()
                sliceStart = System.nanoTime()
            }
        }
    }
    failure.first?.let { throw it }
    @Suppress("UNCHECKED_CAST")
    return Collections.unmodifiableList(results.asList()) as List<R>
}

/**
 * How long a gather may keep its thread before it lets other work run. Starting a call runs its code up to its
 * first suspension (a real HTTP client builds and sends the request there): 200 of them in one go held a loop
 * for 350 ms, long enough for the watchdog to report a stall and for every other caller to wait. So a gather
 * yields once a slice is used up, whether it is starting calls or running calls that never suspend.
 */
private const val SLICE_NANOS = 1_000_000L // 1 ms: a hundredth of the watchdog's default threshold

/**
 * Read the clock every this many starts or calls: a trivial call in a bounded gather costs about 12 ns, and a
 * clock reading 20 ns, so reading it every time tripled the cost (measured with GatherBenchmark).
 */
private const val CHECK_EVERY = 8

/** The first failure of a group of calls, with later real failures attached; safe from any thread. */
internal class FirstFailure {
    private val firstRef = AtomicReference<Throwable?>()

    @Volatile
    var happened: Boolean = false
        private set

    val first: Throwable?
        get() = firstRef.get()

    /** Records [failure]; true if it is the first, whose owner then cancels the other calls. */
    fun record(failure: Throwable): Boolean {
        if (firstRef.compareAndSet(null, failure)) {
            happened = true
            return true
        }
        val first = firstRef.get()!!
        // A cancellation that came after the first failure is the one that failure caused: not news.
        if (failure !is CancellationException && failure !== first) first.addSuppressed(failure)
        return false
    }
}
