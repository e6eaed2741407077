package io.corobridge.benchmarks

import io.corobridge.core.ConcurrencyLimits
import io.corobridge.core.RunSyncLoop
import io.corobridge.core.asyncDispatch
import io.corobridge.core.runInWorkerThread
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.async
import kotlinx.coroutines.awaitAll
import kotlinx.coroutines.channels.Channel
import kotlinx.coroutines.coroutineScope
import kotlinx.coroutines.flow.Flow
import kotlinx.coroutines.flow.flow
import kotlinx.coroutines.flow.toList
import kotlinx.coroutines.launch
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.sync.Semaphore
import kotlinx.coroutines.sync.withPermit
import kotlinx.coroutines.withContext
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

    /**
     * Calls [yieldOnce] [n] times in a row and answers 42: inside one call on the loop, what suspending once costs
     * the loop without the call around it. Each [yieldOnce] is a fresh suspend function, as in a call of its own: a
     * new state machine, a new intercepted continuation, a step dispatched to the loop and run by it.
     */
    @JvmStatic
    suspend fun yieldOnceTimes(n: Int): Int {
        var answer = 0
        repeat(n) { answer = yieldOnce() }
        return answer
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

    /** [awaitAll] with every call's outcome kept, as a settled gather does by hand: `runCatching` in each `async`. */
    @JvmStatic
    suspend fun awaitAllSettled(n: Int): Int = coroutineScope {
        (0 until n).map { async { runCatching { it } } }.awaitAll().size
    }

    /** [semaphoreBounded] with every call's outcome kept. */
    @JvmStatic
    suspend fun semaphoreBoundedSettled(n: Int, bound: Int): Int = coroutineScope {
        val permits = Semaphore(bound)
        (0 until n).map { async { permits.withPermit { runCatching { it } } } }.awaitAll().size
    }

    /** A flow of 0 until [n], emitted without suspending: what StreamBenchmark reads. */
    @JvmStatic
    fun numbers(n: Int): Flow<Int> = flow { for (i in 0 until n) emit(i) }

    /** Every element of [source] in one list: the shortcut that is not a stream. */
    @JvmStatic
    suspend fun toList(source: Flow<Int>): List<Int> = source.toList()

    /**
     * What a Java team writes today to read a flow on a thread of its own: the flow sent into a channel of 64 by
     * a coroutine on [loop], and a blocking loop that takes each element with `runBlocking { receiveCatching() }`.
     * Returns the sum of the elements.
     */
    @JvmStatic
    fun channelRead(loop: RunSyncLoop, source: Flow<Int>): Long {
        val channel = Channel<Int>(64)
        val producer = loop.scope.launch {
            try {
                source.collect { channel.send(it) }
                channel.close()
            } catch (e: Throwable) {
                channel.close(e)
                throw e
            }
        }
        var sum = 0L
        try {
            while (true) {
                val next = channel.tryReceive().takeIf { it.isSuccess } ?: runBlocking { channel.receiveCatching() }
                if (next.isClosed) break
                sum += next.getOrThrow()
            }
        } finally {
            producer.cancel()
        }
        return sum
    }

    /** [n] trivial blocking blocks handed one after another to [loop]'s worker threads, from the loop. */
    @JvmStatic
    suspend fun workerOffloads(loop: RunSyncLoop, n: Int): Int {
        var sum = 0
        for (i in 0 until n) sum += loop.runInWorkerThread { i }
        return sum
    }

    /** The same with `withContext(Dispatchers.IO)`, what coroutine users write for blocking code. */
    @JvmStatic
    suspend fun ioOffloads(n: Int): Int {
        var sum = 0
        for (i in 0 until n) sum += withContext(Dispatchers.IO) { i }
        return sum
    }

    /** [n] trivial blocks, one after another, each under one slot of tag `bench` of [limits]. */
    @JvmStatic
    suspend fun limitedBlocks(limits: ConcurrencyLimits, n: Int): Int {
        var sum = 0
        for (i in 0 until n) sum += limits.withConcurrencyLimit("bench") { i }
        return sum
    }

    /** The same under a kotlinx `Semaphore`: what coroutine users write for a limit of their own. */
    @JvmStatic
    suspend fun semaphoreBlocks(permits: Semaphore, n: Int): Int {
        var sum = 0
        for (i in 0 until n) sum += permits.withPermit { i }
        return sum
    }
}

/** A suspend function that answers at once, called directly and through a facade by FeatureCostBenchmark. */
class Answers {
    @Suppress("RedundantSuspendModifier")
    suspend fun answer(): Int = 42
}

/** [Answers] offered both ways, as a library would: `aanswer` suspends, `answer` is its asyncDispatch twin. */
class DualAnswers(private val loop: RunSyncLoop) {
    private val answers = Answers()

    suspend fun aanswer(): Int = answers.answer()

    fun answer(): Int = loop.asyncDispatch("DualAnswers.aanswer") { aanswer() }
}
