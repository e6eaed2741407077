package io.corobridge.benchmarks

import kotlinx.coroutines.async
import kotlinx.coroutines.awaitAll
import kotlinx.coroutines.coroutineScope
import kotlinx.coroutines.sync.Semaphore
import kotlinx.coroutines.sync.withPermit
import kotlinx.coroutines.yield

/** Suspend functions the benchmarks call, and what coroutine users write by hand to run many calls at once. */
object Baselines {
    /**
     * Suspends once and answers: a real suspend function with its own state machine, so its `yield()` is
     * dispatched through the context's dispatcher and it is resumed by the loop it runs on. (Calling `yield`
     * straight from a Java lambda would hand it the call's own continuation, which is not intercepted, and it
     * would not suspend at all.)
     */
    @JvmStatic
    suspend fun yieldOnce(): Int {
        yield()
        return 42
    }

    /** `coroutineScope { (0 until n).map { async { it } }.awaitAll() }`: [n] trivial calls at once. */
    @JvmStatic
    suspend fun awaitAll(n: Int): Int = coroutineScope {
        (0 until n).map { async { it } }.awaitAll().size
    }

    /** The same with at most [bound] running at once, guarded by a semaphore. */
    @JvmStatic
    suspend fun semaphoreBounded(n: Int, bound: Int): Int = coroutineScope {
        val permits = Semaphore(bound)
        (0 until n).map { async { permits.withPermit { it } } }.awaitAll().size
    }
}
