package io.corobridge.core

import io.corobridge.core.internal.CallBodies
import java.util.Collections
import java.util.concurrent.atomic.AtomicInteger
import java.util.concurrent.atomic.AtomicReference
import kotlinx.coroutines.CancellationException
import kotlinx.coroutines.CoroutineStart
import kotlinx.coroutines.cancelChildren
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
    return gatherAll(ArrayList<Any>(calls), maxConcurrency)
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
    return CallBodies.asCall { gatherAll<T>(copy, maxConcurrency) }
}


private fun requireConcurrency(maxConcurrency: Int) {
    require(maxConcurrency >= 1) { "maxConcurrency must be at least 1, was $maxConcurrency" }
}

/**
 * Runs the calls ([SuspendCall]s or suspend lambdas) with at most [maxConcurrency] workers, each taking
 * the next unstarted call until none is left or one has failed.
 */
private suspend fun <T> gatherAll(calls: List<Any>, maxConcurrency: Int): List<T> {
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
                while (!failure.happened) {
                    val index = next.getAndIncrement()
                    if (index >= calls.size) break
                    try {
                        results[index] = CallBodies.run<T>(calls[index])
                    } catch (e: Throwable) {
                        if (failure.record(e)) {
                            group.coroutineContext.cancelChildren(CancellationException("another call in the gather failed", e))
                        }
                        break
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
    return Collections.unmodifiableList(results.asList()) as List<T>
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
