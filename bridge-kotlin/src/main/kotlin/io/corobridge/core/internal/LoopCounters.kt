package io.corobridge.core.internal

import io.corobridge.core.LoopStats
import io.corobridge.core.RunSyncLoop
import io.corobridge.core.limitsIfMade
import java.util.concurrent.atomic.LongAdder

/**
 * A loop's statistics, counted where the work is handed over so that a blocking call pays one striped
 * increment on each side of its wait and nothing more: tasks queued = calls started + other tasks added +
 * steps the loop dispatched to itself - tasks run (the last two are the loop thread's own counters, see
 * LoopThread).
 */
internal class LoopCounters {
    @JvmField
    val callsStarted = LongAdder()

    @JvmField
    val callsEnded = LongAdder()

    @JvmField
    val otherTasksAdded = LongAdder()

    @JvmField
    val stallStats = StallStats()

    /** The snapshot RunSyncLoop.stats() returns. */
    fun snapshot(loop: RunSyncLoop): LoopStats {
        val started = (loop.thread.taskSeq + 1) / 2
        val calls = callsStarted.sum()
        return LoopStats(
            queuedTasks = maxOf(0L, calls + otherTasksAdded.sum() + loop.thread.ownStepsAdded - started),
            callsInFlight = maxOf(0L, calls - callsEnded.sum()),
            callsStarted = calls,
            backgroundTasks = loop.backgroundTasks.count,
            workerThreads = loop.workerPool.threadCount,
            workersBusy = loop.workerPool.limiter.heldCount,
            workersWaiting = loop.workerPool.limiter.waitingCount,
            workerLimit = loop.workerLimit,
            stalls = stallStats.stalls,
            longestStall = java.time.Duration.ofNanos(stallStats.longestNanos),
            limits = loop.limitsIfMade()?.loopStats() ?: emptyList(),
        )
    }
}
