package io.corobridge.core.internal

import io.corobridge.core.ConcurrencyLimits
import java.util.concurrent.atomic.AtomicIntegerFieldUpdater

/** The [ConcurrencyLimits.Slots] of one `acquire`: the tags taken, in order, and their limiters, released once. */
internal class TakenSlots(
    private val owner: ConcurrencyLimits,
    private val ordered: Array<out String>,
    private val limiters: Array<CapacityLimiter>,
) : ConcurrencyLimits.Slots {
    @Volatile
    private var closed = 0

    override val tags: List<String>
        get() = ordered.toList()

    override val isValid: Boolean
        get() = closed == 0

    override fun close() {
        if (CLOSED.compareAndSet(this, 0, 1)) owner.releaseAll(limiters, limiters.size)
    }

    private companion object {
        private val CLOSED: AtomicIntegerFieldUpdater<TakenSlots> =
            AtomicIntegerFieldUpdater.newUpdater(TakenSlots::class.java, "closed")
    }
}
