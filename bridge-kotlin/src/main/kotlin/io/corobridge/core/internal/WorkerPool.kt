package io.corobridge.core.internal

import io.corobridge.core.RunSyncLoop
import java.util.concurrent.ConcurrentHashMap
import java.util.concurrent.RejectedExecutionException
import java.util.concurrent.SynchronousQueue
import java.util.concurrent.ThreadFactory
import java.util.concurrent.ThreadPoolExecutor
import java.util.concurrent.TimeUnit
import java.util.concurrent.atomic.AtomicInteger
import kotlin.coroutines.resumeWithException
import kotlinx.coroutines.CancellableContinuation
import kotlinx.coroutines.suspendCancellableCoroutine

/*
 * A loop's worker threads for blocking code. Threads are made on demand and retire after KEEP_ALIVE idle
 * (a ThreadPoolExecutor with no core threads and a hand-off queue); how many run blocking code at once is
 * bounded by the limiter, not by the pool: a call takes a slot first (suspending, FIFO), and the worker gives
 * it back when the blocking code has really ended. So a worker abandoned by a cancelled caller keeps its slot
 * while it still runs, and the bound holds for threads, not just for callers.
 */
internal class WorkerPool(private val loop: RunSyncLoop) {
    val limiter = CapacityLimiter(DEFAULT_LIMIT)
    private val threadNumbers = AtomicInteger()

    /** The threads made, kept so that closing can wait for each to be gone; dead ones are pruned as new come. */
    private val threads: MutableSet<WorkerThread> = ConcurrentHashMap.newKeySet()
    private val executor = ThreadPoolExecutor(
        0, Int.MAX_VALUE, KEEP_ALIVE_SECONDS, TimeUnit.SECONDS, SynchronousQueue(),
        ThreadFactory { task ->
            threads.removeIf { !it.isAlive }
            LibraryThreads.create {
                WorkerThread(loop, task, "corobridge-worker-${loop.name}-${threadNumbers.incrementAndGet()}")
            }.also { threads.add(it) }
        },
    )

    /** Worker threads alive now, busy or idle. */
    val threadCount: Int
        get() = executor.poolSize

    /** How long an idle worker waits for work before it ends; internal so tests can shorten it. */
    var keepAliveNanos: Long
        get() = executor.getKeepAliveTime(TimeUnit.NANOSECONDS)
        set(value) = executor.setKeepAliveTime(value, TimeUnit.NANOSECONDS)

    suspend fun <T> run(block: () -> T): T {
        loop.closing.checkOpen()
        limiter.acquire()
        val carried = CarriedContext.capture()
        return suspendCancellableCoroutine { continuation ->
            val task = WorkerTask(block, continuation, this, carried)
            try {
                executor.execute(task)
            } catch (refused: RejectedExecutionException) {
                limiter.release()
                throw loop.closing.closedException().also { it.addSuppressed(refused) }
            }
            continuation.invokeOnCancellation { task.abandon() }
        }
    }

    /** Stops taking work and interrupts workers still running (abandoned) blocking code. Never blocks. */
    fun stop() {
        executor.shutdownNow()
    }

    /**
     * Waits up to [nanos] for every worker thread to be gone (the pool reports termination a moment before its
     * last thread has ended, so each thread is joined); returns those still alive.
     */
    fun awaitStopped(nanos: Long): List<Thread> {
        val deadline = System.nanoTime() + nanos
        for (thread in threads) {
            val left = deadline - System.nanoTime()
            if (left <= 0) break
            LibraryThreads.joinUninterruptibly(thread, left)
        }
        return threads.filter { it.isAlive }
    }

    internal companion object {
        const val DEFAULT_LIMIT = 40
        const val KEEP_ALIVE_SECONDS = 10L
        private val logger: System.Logger = System.getLogger(RunSyncLoop::class.java.name)

        fun logDiscarded(loop: RunSyncLoop, failure: Throwable) {
            logger.logFailure(
                System.Logger.Level.DEBUG,
                "a worker of loop \"${loop.name}\" failed after its caller was cancelled; the failure is discarded",
                failure,
            )
        }
    }
}

/** A thread of a [WorkerPool]. Being a type of its own makes "is this a worker?" a type check. */
internal class WorkerThread(val loop: RunSyncLoop, task: Runnable, name: String) :
    Thread(LibraryThreads.group, task, name, 0, false) {

    val pool: WorkerPool get() = loop.workerPool

    /** The blocking call this worker runs now, or null between calls. Only this thread writes it. */
    @JvmField
    var current: WorkerTask<*>? = null

    /**
     * Runs [block] while this worker waits for the loop, lending its slot to the calls it waits for: a chain
     * loop -> worker -> loop -> worker... then needs one slot at a time, however deep. The slot is taken again
     * (in FIFO order) before the worker continues its own blocking code, whatever happens meanwhile: an
     * interrupt (which cancels the call [block] waits for) does not let the worker go on without its slot,
     * and is kept for the worker's code to see.
     */
    inline fun <T> lendingSlot(block: () -> T): T {
        val task = current ?: return block()
        if (!task.holdsSlot) return block()
        task.holdsSlot = false
        pool.limiter.release()
        try {
            return block()
        } finally {
            pool.limiter.acquireBlocking(interruptible = false)
            task.holdsSlot = true
        }
    }
}

/** One blocking call on a worker: the block, the coroutine waiting for it, and whether it was abandoned. */
internal class WorkerTask<T>(
    private val block: () -> T,
    private val continuation: CancellableContinuation<T>,
    private val pool: WorkerPool,
    private val carried: CarriedContext?,
) : Runnable {
    @Volatile
    var abandoned: Boolean = false
        private set

    /** Whether this task holds its limiter slot; false while lent (see WorkerThread.lendingSlot). Worker only. */
    @JvmField
    var holdsSlot: Boolean = true

    fun abandon() {
        abandoned = true
    }

    override fun run() {
        val worker = Thread.currentThread() as WorkerThread
        worker.current = this
        val tokens = carried?.install()
        val outcome = try {
            Result.success(block())
        } catch (t: Throwable) {
            Result.failure(t)
        } finally {
            // The worker's own context is back before anyone hears that the block ended.
            if (carried != null) carried.restore(tokens)
            worker.current = null
            // The blocking code has ended: the slot is free before the caller hears of it.
            if (holdsSlot) pool.limiter.release()
        }
        if (abandoned) {
            // Nobody waits for it any more: a late value is dropped, a late failure only logged at DEBUG.
            outcome.exceptionOrNull()?.let { WorkerPool.logDiscarded(worker.loop, it) }
            return
        }
        outcome.fold({ continuation.resume(it) { _, _, _ -> } }, { continuation.resumeWithException(it) })
    }
}
