package io.corobridge.core

import java.time.Duration

/**
 * A snapshot of a loop's state, from [RunSyncLoop.stats]. Each number is read at a slightly different
 * instant, so on a busy loop they need not add up exactly to one moment's truth.
 *
 * @since 0.1
 */
public class LoopStats internal constructor(
    /** Tasks handed to the loop thread and not yet started: calls, and steps of coroutines to resume. */
    public val queuedTasks: Long,
    /** Blocking (`runSync`) and future (`runAsync`) calls made and not yet ended. */
    public val callsInFlight: Long,
    /**
     * Blocking and future calls made since the loop started, ended or not: a count that only grows, for a rate
     * (calls a second) between two snapshots.
     *
     * @since 0.2
     */
    public val callsStarted: Long,
    /** Background tasks (`launch`) not yet ended. */
    public val backgroundTasks: Int,
    /** Worker threads alive, running blocking code or idle. */
    public val workerThreads: Int,
    /** Blocking calls holding a worker slot: running, or abandoned by their caller but not yet ended. */
    public val workersBusy: Int,
    /** Blocking calls waiting for a worker slot. */
    public val workersWaiting: Int,
    /** The loop's [RunSyncLoop.workerLimit]. */
    public val workerLimit: Int,
    /** Stalls the watchdog has reported since the loop started. */
    public val stalls: Long,
    /** The longest stall seen, to within the watchdog's sampling period; zero if none. */
    public val longestStall: Duration,
    /**
     * Each of the loop's concurrency limits ([RunSyncLoop.limits]), sorted by tag. With a shared store
     * ([useSharedLimits]): the tags used here, with slots -1 (kept in the store) and this JVM's holders and waiters.
     */
    public val limits: List<LimitStats>,
) {
    override fun toString(): String =
        "LoopStats(queuedTasks=$queuedTasks, callsInFlight=$callsInFlight, callsStarted=$callsStarted, " +
            "backgroundTasks=$backgroundTasks, " +
            "workerThreads=$workerThreads, workersBusy=$workersBusy, workersWaiting=$workersWaiting, " +
            "workerLimit=$workerLimit, stalls=$stalls, longestStall=$longestStall, limits=$limits)"
}
