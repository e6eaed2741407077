package io.corobridge.core.internal

/*
 * The blocking calls that suspended on the loop thread, so that closing the loop can cancel them, wait for
 * them and release their callers. It replaces, for them, making each call a child of the loop's supervisor
 * job: that costs a node of about 40 bytes and a compare-and-set on the supervisor's shared child list when
 * the call suspends, and another when it ends, which made a call that suspends once cost twice an immediate
 * one. Here registering costs two plain stores and a volatile one, and nothing when the call ends.
 *
 * A singly linked list, newest first, linked through the call's own queue link (LoopCall.nextInQueue, unused
 * once the loop has taken the call from its queue). Only the loop thread changes it: it adds at the head and,
 * now and then, unlinks calls that have ended. Any thread may walk it: the head is volatile and written after
 * the new call's link, and unlinking only ever makes a link skip ended calls, so a walker that sees a stale
 * link still meets every call that had not ended when it read the head (plus some that had, which it skips
 * or finds harmless: cancelling or releasing an ended call does nothing).
 *
 * Ended calls stay linked until the next sweep: when the list has doubled since the last one, or when the
 * loop goes idle with calls added since. So it holds at most about twice the calls that were suspended at
 * once, plus 64.
 */
internal class SuspendedCalls {
    @Volatile
    private var head: LoopCall<*>? = null

    /** Calls linked now, ended or not; loop thread only. */
    private var linked = 0

    /** Calls found not ended at the last sweep; loop thread only. */
    private var liveAtSweep = 0

    /** Loop thread only. */
    fun add(call: LoopCall<*>) {
        call.nextInQueue = head
        head = call
        if (++linked >= 2 * liveAtSweep + SLACK) sweep()
    }

    /** Loop thread only: before the loop parks, drops ended calls if any were added since the last sweep. */
    fun sweepIfAdded() {
        if (linked > liveAtSweep) sweep()
    }

    private fun sweep() {
        var previous: LoopCall<*>? = null
        var node = head
        var live = 0
        while (node != null) {
            val next = node.nextInQueue as LoopCall<*>?
            if (node.isCompleted) {
                if (previous == null) head = next else previous.nextInQueue = next
            } else {
                previous = node
                live++
            }
            node = next
        }
        linked = live
        liveAtSweep = live
    }

    /** Any thread: runs [action] on every call that may not have ended. */
    inline fun forEachUnfinished(action: (LoopCall<*>) -> Unit) {
        var node = head
        while (node != null) {
            val next = node.nextInQueue as LoopCall<*>?
            if (!node.isCompleted) action(node)
            node = next
        }
    }

    /** Any thread: true if some call has not ended. */
    fun anyUnfinished(): Boolean {
        forEachUnfinished { return true }
        return false
    }

    /** Calls linked now, ended or not (for tests); loop thread only. */
    internal val linkedCount: Int
        get() = linked

    private companion object {
        const val SLACK = 64
    }
}
