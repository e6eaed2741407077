package io.corobridge.core.internal

/*
 * A rate limit: at most `burst` acquisitions at once, refilled at `perSecond`, so that over time at most `perSecond`
 * pass per second. Kept as the generic cell rate algorithm's one number, the theoretical arrival time (tat) of the
 * next acquisition: an acquisition at `now` may pass at max(now, tat - tolerance), where the tolerance lets `burst`
 * pass at once; passing moves tat on by one interval. Each caller reserves its own moment under the lock and then
 * waits for it, so callers pass in the order they asked, and one that gives up after reserving wastes its moment
 * (the rate is never exceeded). A caller whose moment lies beyond its timeout reserves nothing.
 */
internal class RateLimiter(val perSecond: Double, val burst: Int) {
    private val intervalNanos = (1e9 / perSecond).toLong().coerceAtLeast(1)
    private val toleranceNanos = intervalNanos * (burst - 1)
    private var tat = System.nanoTime() // guarded by this

    /** Reserves the next moment to pass; returns how long to wait for it, or -1 (nothing reserved) past [maxWaitNanos]. */
    @Synchronized
    fun reserve(maxWaitNanos: Long): Long {
        val now = System.nanoTime()
        val start = if (tat - now > 0) tat else now
        val wait = maxOf(0L, start - toleranceNanos - now)
        if (wait > maxWaitNanos) return -1
        tat = start + intervalNanos
        return wait
    }
}
