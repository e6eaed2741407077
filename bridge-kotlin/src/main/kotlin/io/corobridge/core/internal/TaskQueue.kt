package io.corobridge.core.internal

import java.util.concurrent.atomic.AtomicReference
import kotlin.coroutines.CoroutineContext

/** A task in a loop's queue that carries its own link, so queueing it allocates nothing. */
internal interface QueuedTask : Runnable {
    var nextInQueue: QueuedTask?
}

/** A task dispatched to the loop by a coroutine, with the context it was dispatched in. */
internal class DispatchedTask(
    @JvmField val task: Runnable,
    @JvmField val context: CoroutineContext,
) : QueuedTask {
    override var nextInQueue: QueuedTask? = null

    override fun run() {
        task.run()
    }
}

/*
 * The loop's queue, first in first out across everything it runs: many producers, one consumer (the loop
 * thread). Submitted calls are their own queue nodes (LoopCall implements QueuedTask); dispatched coroutine
 * steps are wrapped in a DispatchedTask, one small node each, as any queue would need.
 *
 * Producers push onto a lock-free stack. The consumer takes the whole stack at once (getAndSet) and reverses
 * it into a list it alone owns, which restores arrival order. The link is a plain field: it is written
 * before the CAS that publishes the task, and read only after the getAndSet that takes it, so the
 * CAS/getAndSet pair orders the accesses.
 */
internal class TaskQueue {
    private val pushed = AtomicReference<QueuedTask?>()

    /** Owned by the consumer: tasks taken from [pushed], oldest first. */
    private var taken: QueuedTask? = null

    /** Adds a task; safe from any thread. */
    fun push(task: QueuedTask) {
        while (true) {
            val head = pushed.get()
            task.nextInQueue = head
            if (pushed.compareAndSet(head, task)) return
        }
    }

    /** Takes the oldest task, or null; consumer only. */
    fun poll(): QueuedTask? {
        var task = taken
        if (task == null) {
            task = reverse(pushed.getAndSet(null) ?: return null)
        }
        taken = task.nextInQueue
        task.nextInQueue = null
        return task
    }

    /** True if nothing is queued; consumer only. */
    fun isEmpty(): Boolean = taken == null && pushed.get() == null

    /**
     * Takes every task pushed and not yet taken by the consumer, oldest first; safe from any thread. Used
     * once the loop has ended, so that a task pushed too late is handled by exactly one party.
     */
    fun takePushed(): QueuedTask? = pushed.getAndSet(null)?.let(::reverse)

    /** Takes everything, the consumer's own list first; consumer only (or once the consumer is gone). */
    fun drain(): QueuedTask? {
        val first = taken
        taken = null
        val rest = takePushed()
        if (first == null) return rest
        var last: QueuedTask = first
        while (true) last = last.nextInQueue ?: break
        last.nextInQueue = rest
        return first
    }

    private fun reverse(newestFirst: QueuedTask): QueuedTask {
        var reversed: QueuedTask? = null
        var current: QueuedTask? = newestFirst
        while (current != null) {
            val next = current.nextInQueue
            current.nextInQueue = reversed
            reversed = current
            current = next
        }
        return reversed!!
    }
}
