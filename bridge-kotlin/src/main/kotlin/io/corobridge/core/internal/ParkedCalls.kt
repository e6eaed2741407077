package io.corobridge.core.internal

import java.util.concurrent.atomic.AtomicReferenceArray

/*
 * The blocking calls whose callers have parked to wait for them, so that closing the loop can cancel them and,
 * if the loop gives up on its calls (its thread is stuck in a task, or died), release their callers. Until a
 * caller parks, it finds out for itself: it spins, and reads the loop's state when it stops. A parked caller
 * needs someone to wake it, and its call may be anywhere: queued, taken by the loop but not yet run, running
 * on the loop thread (perhaps the very task the loop is stuck in), or suspended.
 *
 * It replaces, for them, making the call a child of the loop's supervisor, which allocated about 30 bytes more
 * per parked call (93-95 bytes in all against the 64 of a call answered while its caller spun) and a
 * compare-and-set on the supervisor's one child list, which every parking caller contends for.
 * Here a caller takes a free slot of a fixed array by compare-and-set and empties it when it wakes: no
 * allocation, and callers on different threads mostly touch different slots. Only a call that finds none of
 * the [PROBES] slots it looks at free (more platform callers parked at once than the array has room for) joins
 * the supervisor as before.
 *
 * Callers on virtual threads take no slot: they come by the thousand, more than any fixed array holds, and each
 * would first read slots all taken, on lines that other carriers keep writing, before joining the supervisor
 * anyway (1,000 virtual callers of immediate calls made about a quarter fewer calls that way, in noisy runs of
 * benchmarks' CallerScale: 0.87-1.12 calls/us against 0.95-1.34). Their calls join the supervisor at once, as before.
 *
 * Ordering with a closing thread: the caller's compare-and-set into a slot comes before its reads of the loop's
 * state, and closing changes the state before it walks the slots (all volatile accesses), so either the walk
 * meets the call or the caller meets the close (see ClosingProtocol.registerParked). A walker may meet a call that
 * has just ended, or whose caller is just leaving its slot; cancelling or releasing a call that has ended does
 * nothing.
 */
internal class ParkedCalls(capacity: Int = DEFAULT_CAPACITY) {
    init {
        require(capacity >= PROBES && capacity and (capacity - 1) == 0) {
            "capacity must be a power of two of at least $PROBES, was $capacity"
        }
    }

    private val slots = AtomicReferenceArray<LoopCall<*>?>(capacity)
    private val mask = capacity - 1

    /**
     * Any thread: puts [call] into a free slot, looking first where [hash] (by default the calling thread's) points;
     * returns the slot's index, to give to [remove], or -1 if every slot it looked at was taken.
     */
    fun add(call: LoopCall<*>, hash: Int = System.identityHashCode(Thread.currentThread())): Int {
        for (i in 0 until PROBES) {
            val index = (hash + i) and mask
            if (slots.get(index) == null && slots.compareAndSet(index, null, call)) return index
        }
        return -1
    }

    /** Any thread: empties slot [index], which [add] gave the calling thread. */
    fun remove(index: Int) {
        slots.lazySet(index, null)
    }

    /** Any thread: runs [action] on every call in a slot. */
    fun forEach(action: (LoopCall<*>) -> Unit) {
        for (i in 0 until slots.length()) {
            slots.get(i)?.let(action)
        }
    }

    /** Calls in a slot now (for tests). */
    internal val count: Int
        get() = (0 until slots.length()).count { slots.get(it) != null }

    internal companion object {
        /** Room for this many parked callers at once: 1 KB of slots per loop. */
        const val DEFAULT_CAPACITY = 256

        /** Slots a caller looks at before it gives up and joins the supervisor instead. */
        const val PROBES = 8
    }
}
