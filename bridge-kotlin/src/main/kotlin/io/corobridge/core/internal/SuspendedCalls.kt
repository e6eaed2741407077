package io.corobridge.core.internal

/*
 * The blocking calls that suspended on the loop thread, so that closing the loop can cancel them, wait for
 * them and release their callers. It replaces, for them, making each call a child of the loop's supervisor
 * job: that costs a node of about 40 bytes and a compare-and-set on the supervisor's shared child list when
 * the call suspends, and another when it ends, which made a call that suspends once cost twice an immediate
 * one. Here registering costs a store into an array and a volatile store, and nothing when the call ends.
 *
 * An array of slots that only the loop thread writes. Registering writes nothing into the call itself: its
 * caller is spinning on the call's fields, and each write the loop made there had to take the cache line
 * back from the caller first (linking the calls through their own queue link, as an earlier version did,
 * made a call that suspends once cost 1.7 x an immediate one, against 1.45 x this way; benchmarks'
 * SuspendCost).
 *
 * Any thread may walk the slots. The loop thread only ever (a) stores a call into an empty slot, (b) empties
 * the slot of a call that has ended, or (c) publishes a new array holding every call of the old one that had
 * not ended. None of these hides a call that has not ended from a walker that began before it. Registering
 * ends with a volatile store of [slots] (the same array, or a new one), and a walker starts with a volatile
 * read of it, so a walker sees every call registered before that read; closing, which sets the loop's closed
 * state before it walks, relies on the registering side to check that state after its volatile store (see
 * ClosingProtocol.registerSuspended): either the walker sees the call, or the call sees the close.
 *
 * A call that ends on the loop thread while it is still the last one added leaves its slot at once (see
 * [removeIfLast]): with calls that suspend one at a time, as one caller makes them, the array never fills and
 * nothing reads the ended calls. Other ended calls stay in their slots until the slot is needed or the loop
 * goes idle, so the array holds at most about twice the calls that were suspended at once, and at least
 * [MIN_SLOTS]. An ended call in a slot still holds its result, and reading it means reading a cache line its
 * caller may have moved on to write (the next call's record is allocated right after it).
 */
internal class SuspendedCalls {
    @Volatile
    private var slots: Array<LoopCall<*>?> = arrayOfNulls(MIN_SLOTS)

    /** Where the next free slot is looked for; loop thread only. */
    private var cursor = 0

    /** Calls registered so far, less those [removeIfLast] took back; loop thread only. */
    private var added = 0L

    /** [added] at the last idle sweep; loop thread only. */
    private var addedAtSweep = 0L

    /** The call added last, while it is in the slot before [cursor]; loop thread only. */
    private var lastAdded: LoopCall<*>? = null

    /** Loop thread only. */
    fun add(call: LoopCall<*>) {
        var array = slots
        var i = cursor
        while (true) {
            if (i == array.size) {
                array = makeRoom(array)
                i = 0
            }
            if (array[i] == null) break
            i++
        }
        array[i] = call
        cursor = i + 1
        lastAdded = call
        added++
        slots = array // publishes the call (see above), even when the array is the same
    }

    /**
     * Loop thread only, once [call] has ended: empties its slot if it is still the call added last, as if it had
     * never been added. Any other call stays until a sweep or [makeRoom] finds it ended.
     */
    fun removeIfLast(call: LoopCall<*>) {
        if (lastAdded !== call) return
        lastAdded = null
        val i = cursor - 1
        val array = slots
        if (i >= 0 && array[i] === call) {
            array[i] = null
            cursor = i
            added--
        }
    }

    /**
     * Loop thread only, when the cursor reached the end: empties the slots of calls that ended, and if fewer
     * than half the slots came free, moves the calls that have not ended into a new array twice the size.
     */
    private fun makeRoom(array: Array<LoopCall<*>?>): Array<LoopCall<*>?> {
        val live = clearEnded(array)
        if (live <= array.size / 2) return array
        return replace(array, live, array.size * 2)
    }

    /** Loop thread only, before the loop parks: lets go of calls that ended, if any were added since last time. */
    fun sweepIfAdded() {
        if (added == addedAtSweep) return
        addedAtSweep = added
        lastAdded = null // the cursor goes back to the start: its slot is no longer known
        val array = slots
        val live = clearEnded(array)
        cursor = 0
        // After a burst, give the memory back rather than walk a large array at every idle moment.
        if (array.size > MIN_SLOTS && live < array.size / 8) replace(array, live, maxOf(MIN_SLOTS, live * 2))
    }

    /** Empties the slots of ended calls in place; returns how many calls are left. */
    private fun clearEnded(array: Array<LoopCall<*>?>): Int {
        var live = 0
        for (i in array.indices) {
            val call = array[i] ?: continue
            if (call.isCompleted) array[i] = null else live++
        }
        return live
    }

    /** Publishes an array of [size] slots holding the [live] calls of [array], first; the old one is left as it is. */
    private fun replace(array: Array<LoopCall<*>?>, live: Int, size: Int): Array<LoopCall<*>?> {
        val fresh = arrayOfNulls<LoopCall<*>>(maxOf(size, live + 1))
        var n = 0
        for (call in array) if (call != null) fresh[n++] = call
        slots = fresh
        cursor = 0
        lastAdded = null
        return fresh
    }

    /**
     * Once the loop has ended and released the callers of the calls that had not (its thread's last act): lets
     * go of every call, so that a closed loop that is still referenced does not keep their bodies, and with them
     * the classes and class loaders of the code that made the calls.
     */
    fun clearAtEnd() {
        slots.fill(null)
        cursor = 0
        lastAdded = null
    }

    /** Any thread: runs [action] on every call that may not have ended. */
    fun forEachUnfinished(action: (LoopCall<*>) -> Unit) {
        for (call in slots) {
            if (call != null && !call.isCompleted) action(call)
        }
    }

    /** Any thread: true if some call has not ended. */
    fun anyUnfinished(): Boolean = slots.any { it != null && !it.isCompleted }

    /** Calls held now, ended or not (for tests); loop thread only. */
    internal val linkedCount: Int
        get() = slots.count { it != null }

    private companion object {
        const val MIN_SLOTS = 64
    }
}
