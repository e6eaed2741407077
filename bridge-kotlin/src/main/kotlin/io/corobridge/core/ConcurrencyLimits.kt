package io.corobridge.core

import io.corobridge.core.internal.CallBodies
import io.corobridge.core.internal.CapacityLimiter
import io.corobridge.core.internal.LoopThread
import io.corobridge.core.internal.TakenSlots
import io.corobridge.core.internal.nanosOr
import io.corobridge.core.internal.loopOfThisCoroutine
import java.util.concurrent.ConcurrentHashMap
import java.util.concurrent.locks.ReentrantLock
import kotlin.concurrent.withLock
import kotlin.time.Duration
import kotlin.time.toJavaDuration
import kotlin.time.Duration.Companion.nanoseconds
import kotlinx.coroutines.withTimeoutOrNull

/**
 * A loop's named concurrency limits ([RunSyncLoop.limits]): "at most 10 running with tag `db`", set once and
 * obeyed by coroutine code (which suspends for a slot) and by plain threads (which block) alike. The
 * counterpart of Prefect's `prefect concurrency-limit` and `concurrency()`.
 *
 * ```kotlin
 * loop.limits.create("db", 10)
 * val rows = loop.limits.withConcurrencyLimit("db") { repository.query(sql) }
 * ```
 *
 * - **Several tags** are taken in one global order (sorted by name) and all-or-nothing: a caller that cannot
 *   get them all within its timeout gives back those it took. So callers asking for {a, b} and {b, a} never
 *   deadlock. Repeated tags count once.
 * - **Waiting** is first come, first served per tag. A coroutine suspends (the loop is never blocked); a
 *   thread parks.
 * - **Slots are released on every path**: normal end, exception, cancellation of a waiting or a running
 *   coroutine, interrupt, timeout; never twice.
 * - **No tags** runs the body unlimited and touches nothing.
 *
 * Safe to use from any thread.
 *
 * @since 0.1
 */
public class ConcurrencyLimits internal constructor(
    /** Where the limits live when they are shared by several JVMs; null for limits kept in the loop (the default). */
    private val shared: SharedLimitStore? = null,
) {
    private val limits = ConcurrentHashMap<String, CapacityLimiter>()
    private val definitions = ReentrantLock()

    /** With a shared store: this JVM's part of each tag (waiting and holding here), for statistics. */
    private val local = ConcurrentHashMap<String, LocalUse>()

    private class LocalUse {
        val held = java.util.concurrent.atomic.AtomicInteger()
        val waiting = java.util.concurrent.atomic.AtomicInteger()
        val waitedNanos = java.util.concurrent.atomic.AtomicLong()
    }

    /**
     * Defines [tag] with [slots] slots; 0 switches the tag off (asking for it then fails at once). Defining a
     * tag again with the same size changes nothing; with another size it is allowed only while no slot of it
     * is held.
     *
     * @throws IllegalArgumentException if [tag] is blank or [slots] is negative
     * @throws IllegalStateException if [tag] exists with another size and some of its slots are held
     * @since 0.1
     */
    public fun create(tag: String, slots: Int) {
        require(tag.isNotBlank()) { "tag must not be blank, was \"$tag\"" }
        require(slots >= 0) { "slots must be 0 (tag switched off) or more, was $slots for tag \"$tag\"" }
        if (shared != null) {
            shared.create(tag, slots)
            return
        }
        definitions.withLock {
            val existing = limits[tag]
            if (existing == null) {
                limits[tag] = CapacityLimiter(slots)
                return
            }
            val occupancy = existing.occupancy()
            if (occupancy.slots == slots) return
            val held = existing.resizeIfIdle(slots)
            check(held < 0) {
                "concurrency limit \"$tag\" cannot change from ${occupancy.slots} to $slots slots while $held " +
                    "of them are held; redefine it when none is"
            }
        }
    }

    private val rates = ConcurrentHashMap<String, io.corobridge.core.internal.RateLimiter>()

    private companion object {
        /** One pass a year: the slowest rate [createRate] takes. */
        const val MIN_RATE_PER_SECOND: Double = 1.0 / (365 * 86_400)
    }

    /**
     * Defines [tag] as a rate limit: at most [perSecond] passes per second over time, and at most [burst] at once
     * after a quiet spell (Prefect's `rate_limit` on a limit with `slot_decay_per_second`). Pass it with [rateLimit]
     * (suspends) or [rateLimitBlocking] (blocks); a pass is not given back, it decays. In this loop's limits only:
     * with a shared store, in the store, for every JVM. Defining it again replaces it.
     *
     * @throws IllegalArgumentException if [tag] is blank, [perSecond] below one a year (3.2e-8) or not finite, or
     *   [burst] below 1
     * @since 0.2
     */
    @JvmOverloads
    public fun createRate(tag: String, perSecond: Double, burst: Int = 1) {
        require(tag.isNotBlank()) { "tag must not be blank, was \"$tag\"" }
        // Slower than one a year, the time between passes overflows what the stores can count in (a shared store
        // found a 4.9e-324 rate infinite, and then let every pass through).
        require(perSecond >= MIN_RATE_PER_SECOND && perSecond.isFinite()) {
            "perSecond must be at least one a year ($MIN_RATE_PER_SECOND) and finite, was $perSecond for tag \"$tag\""
        }
        require(burst >= 1) { "burst must be at least 1, was $burst for tag \"$tag\"" }
        if (shared != null) shared.createRate(tag, perSecond, burst)
        else rates[tag] = io.corobridge.core.internal.RateLimiter(perSecond, burst)
    }

    /**
     * Waits, suspended, until the rate limit [tag] lets one more pass: callers get their turns in the order they
     * asked (each reserves the next moment, then waits for it); with a [timeout]
     * that its turn would come after, it throws [ConcurrencyLimitTimeoutException] at once, having taken nothing.
     * Cancellable: a coroutine cancelled while waiting gives up its turn (the rate is never exceeded).
     *
     * @throws IllegalArgumentException if [tag] is not a rate limit (the message lists those there are)
     * @since 0.2
     */
    public suspend fun rateLimit(tag: String, timeout: Duration? = null) {
        require(timeout == null || timeout.isPositive()) { "timeout must be positive, was $timeout" }
        val maxWait = timeout?.inWholeNanoseconds ?: Long.MAX_VALUE
        val wait = if (shared != null) {
            // The store's round trip, off the loop thread.
            kotlinx.coroutines.withContext(kotlinx.coroutines.Dispatchers.IO) { shared.reserveRate(tag, maxWait) }
                .also { if (it < 0) throw sharedRateTimedOut(tag, maxWait) }
        } else {
            val limiter = rate(tag)
            limiter.reserve(maxWait).also { if (it < 0) throw rateTimedOut(tag, limiter, maxWait) }
        }
        if (wait > 0) kotlinx.coroutines.delay(wait.nanoseconds)
    }

    /**
     * [rateLimit] for a thread: blocks it until the rate limit [tag] lets one more pass, or throws
     * [ConcurrencyLimitTimeoutException] at once if its turn would come after [timeout].
     *
     * @throws java.util.concurrent.CancellationException if the thread is interrupted while waiting (the flag is set again)
     * @throws IllegalStateException on a loop thread, where blocking would stall the loop (use [rateLimit] there)
     * @since 0.2
     */
    public fun rateLimitBlocking(timeout: java.time.Duration, tag: String) {
        require(!timeout.isNegative && !timeout.isZero) { "timeout must be positive, was $timeout" }
        check(Thread.currentThread() !is LoopThread) {
            "rateLimitBlocking blocks its thread, and this is loop thread \"${Thread.currentThread().name}\"; use rateLimit there"
        }
        val maxWait = timeout.nanosOr(Long.MAX_VALUE / 4)
        val wait = if (shared != null) {
            shared.reserveRate(tag, maxWait).also { if (it < 0) throw sharedRateTimedOut(tag, maxWait) }
        } else {
            val limiter = rate(tag)
            limiter.reserve(maxWait).also { if (it < 0) throw rateTimedOut(tag, limiter, maxWait) }
        }
        val until = System.nanoTime() + wait
        while (true) {
            val left = until - System.nanoTime()
            if (left <= 0) return
            java.util.concurrent.locks.LockSupport.parkNanos(this, left)
            if (Thread.interrupted()) {
                Thread.currentThread().interrupt()
                throw java.util.concurrent.CancellationException("interrupted while waiting for rate limit \"$tag\"")
            }
        }
    }

    private fun rate(tag: String): io.corobridge.core.internal.RateLimiter =
        rates[tag] ?: throw IllegalArgumentException(
            "unknown rate limit \"$tag\"; known: " +
                (rates.keys.sorted().takeIf { it.isNotEmpty() }?.joinToString(", ") { "\"$it\"" } ?: "none (define one with createRate)")
        )

    private fun sharedRateTimedOut(tag: String, timeoutNanos: Long) = ConcurrencyLimitTimeoutException(
        "rate limit \"$tag\" in the shared store would not let this pass within ${java.time.Duration.ofNanos(timeoutNanos)}; " +
            "nothing was taken",
        tag, -1, -1, -1,
    )

    private fun rateTimedOut(tag: String, limiter: io.corobridge.core.internal.RateLimiter, timeoutNanos: Long) =
        ConcurrencyLimitTimeoutException(
            "rate limit \"$tag\" (${limiter.perSecond} per second, burst ${limiter.burst}) would not let this pass within " +
                "${java.time.Duration.ofNanos(timeoutNanos)}; nothing was taken",
            tag, -1, limiter.burst, -1,
        )

    /** The tags defined so far, sorted. */
    public val tags: List<String>
        get() = shared?.limits()?.keys?.sorted() ?: limits.keys.sorted()

    /**
     * Slots of [tag] held now. @throws IllegalArgumentException if [tag] is unknown
     *
     * @since 0.1
     */
    public fun occupied(tag: String): Int = shared?.occupied(tag) ?: limiter(tag).heldCount

    /**
     * Callers waiting for a slot of [tag] now. @throws IllegalArgumentException if [tag] is unknown
     *
     * @since 0.1
     */
    public fun waiting(tag: String): Int =
        if (shared != null) local[tag]?.waiting?.get() ?: 0 else limiter(tag).waitingCount

    /**
     * The time callers have spent waiting for slots of [tag], summed, since it was defined.
     *
     * @throws IllegalArgumentException if [tag] is unknown
     * @since 0.1
     */
    public fun totalWaitTime(tag: String): java.time.Duration =
        java.time.Duration.ofNanos(if (shared != null) local[tag]?.waitedNanos?.get() ?: 0 else limiter(tag).waitedNanosTotal)

    /**
     * A snapshot of every limit, sorted by tag.
     *
     * @since 0.1
     */
    public fun stats(): List<LimitStats> {
        if (shared != null) {
            return shared.limits().map { (tag, slots) ->
                LimitStats(tag, slots, shared.occupied(tag), waiting(tag), totalWaitTime(tag))
            }
        }
        return tags.map { tag ->
            val o = limiter(tag).occupancy()
            LimitStats(tag, o.slots, o.held, o.waiting, java.time.Duration.ofNanos(o.waitedNanos))
        }
    }

    /**
     * What [RunSyncLoop.stats] shows, without a round trip to a shared store: with one, this JVM's part of each
     * tag it used (slots unknown, -1; held and waiting here).
     */
    internal fun loopStats(): List<LimitStats> {
        if (shared == null) return stats()
        return local.entries.sortedBy { it.key }.map { (tag, use) ->
            LimitStats(tag, -1, use.held.get(), use.waiting.get(), java.time.Duration.ofNanos(use.waitedNanos.get()))
        }
    }

    private fun localUse(tag: String): LocalUse = local.computeIfAbsent(tag) { LocalUse() }

    /**
     * Runs [block] holding one slot of each of [tags], suspending until they are all free (see the class for
     * the order and fairness), and releases them however [block] ends. With a [timeout], gives back what it
     * took and throws [ConcurrencyLimitTimeoutException] if it could not get them all in time; the timeout
     * covers the waiting only, not [block].
     *
     * @throws IllegalArgumentException if a tag is unknown (the message lists the known tags)
     * @throws IllegalStateException if a tag is switched off (0 slots), at once
     * @since 0.1
     */
    public suspend fun <T> withConcurrencyLimit(
        vararg tags: String,
        timeout: Duration? = null,
        block: suspend () -> T,
    ): T {
        if (tags.isEmpty()) return block()
        require(timeout == null || timeout.isPositive()) { "timeout must be positive, was $timeout" }
        if (shared != null) {
            val ordered = order(tags)
            val grant = waitingHere(ordered) { shared.acquire(ordered.asList(), timeout?.toJavaDuration()) }
            try {
                return block()
            } finally {
                grant.close()
                for (tag in ordered) localUse(tag).held.decrementAndGet()
            }
        }
        if (tags.size == 1) {
            // The common case, kept free of allocation when a slot is free.
            val tag = tags[0]
            val limiter = limiter(tag)
            if (!tryAcquire(tag, limiter)) acquireSuspending(arrayOf(tag), arrayOf(limiter), timeout)
            try {
                return block()
            } finally {
                limiter.release()
            }
        }
        val ordered = order(tags)
        val limiters = limitersOf(ordered)
        acquireSuspending(ordered, limiters, timeout)
        try {
            return block()
        } finally {
            releaseAll(limiters, limiters.size)
        }
    }

    /**
     * Takes one slot of each of [tags] for the calling thread, blocking it until all are free or [timeout]
     * has passed; close the returned [Slots] (try-with-resources) to give them back.
     *
     * @throws ConcurrencyLimitTimeoutException if they were not all free in time (none is then held)
     * @throws java.util.concurrent.CancellationException if the thread is interrupted while waiting (none is
     *   then held, and the interrupt flag is set again)
     * @throws IllegalArgumentException if a tag is unknown, or [timeout] is not positive
     * @throws IllegalStateException if a tag is switched off (0 slots), or if called on a loop thread, where
     *   blocking would stall the loop (use [withConcurrencyLimit] or [limited] there)
     *
     * @since 0.1
     */
    public fun acquire(timeout: java.time.Duration, vararg tags: String): Slots {
        require(!timeout.isNegative && !timeout.isZero) { "timeout must be positive, was $timeout" }
        check(Thread.currentThread() !is LoopThread) {
            "acquire blocks its thread, and this is loop thread \"${Thread.currentThread().name}\": waiting there " +
                "would stall every coroutine on the loop. Use withConcurrencyLimit (Kotlin) or limited(call, tags) " +
                "(Java) in code that runs on the loop."
        }
        if (tags.isEmpty()) return TakenSlots(this, tags, emptyArray())
        if (shared != null) {
            val ordered = order(tags)
            val grant = waitingHere(ordered) { shared.acquireBlocking(ordered.asList(), timeout) }
            return SharedSlots(ordered, grant)
        }
        val ordered = if (tags.size == 1) arrayOf(tags[0]) else order(tags)
        val limiters = limitersOf(ordered)
        val timeoutNanos = timeout.nanosOr(Long.MAX_VALUE / 4)
        var deadline = 0L
        var taken = 0
        try {
            while (taken < limiters.size) {
                val tag = ordered[taken]
                val limiter = limiters[taken]
                if (!tryAcquire(tag, limiter)) {
                    if (deadline == 0L) deadline = System.nanoTime() + timeoutNanos
                    val left = deadline - System.nanoTime()
                    val got = try {
                        left > 0 && limiter.acquireBlocking(left)
                    } catch (_: CapacityLimiter.Off) {
                        throw switchedOff(tag)
                    } catch (_: InterruptedException) {
                        Thread.currentThread().interrupt()
                        throw java.util.concurrent.CancellationException(
                            "interrupted while waiting for concurrency limit \"$tag\"; no slot is held"
                        )
                    }
                    if (!got) throw timedOut(tag, limiter, timeout)
                }
                taken++
            }
        } catch (t: Throwable) {
            releaseAll(limiters, taken)
            throw t
        }
        return TakenSlots(this, ordered, limiters)
    }

    // ---- Java-shaped form (a SuspendCall, Runnable or Callable, as Java writes them) ----
    /**
     * Wraps [call] so that wherever it runs (`runSync`, `runAsync`, gathers, background tasks) it first takes a
     * slot of each of [tags], suspending, and releases them when it ends.
     *
     * @throws IllegalArgumentException if a tag is unknown (checked now, and again when the call runs)
     * @since 0.1
     */
    public fun <T> limited(call: SuspendCall<T>, vararg tags: String): SuspendCall<T> {
        val names = tags.copyOf()
        // Unknown tags fail here, not at the first run; a shared store checks them when the call runs.
        if (shared == null) limitersOf(order(names)) else order(names)
        return CallBodies.asCall { withConcurrencyLimit(*names) { CallBodies.run<T>(call) } }
    }

    /** Runs [acquire] counted as this JVM waiting for [tags] of a shared store, then as holding them. */
    private inline fun waitingHere(tags: Array<String>, acquire: () -> Slots): Slots {
        val uses = Array(tags.size) { localUse(tags[it]) }
        for (use in uses) use.waiting.incrementAndGet()
        val start = System.nanoTime()
        try {
            val grant = acquire()
            for (use in uses) use.held.incrementAndGet()
            return grant
        } finally {
            val waited = System.nanoTime() - start
            for (use in uses) {
                use.waiting.decrementAndGet()
                use.waitedNanos.addAndGet(waited)
            }
        }
    }

    /** The [Slots] of a blocking acquire from a shared store. */
    private inner class SharedSlots(private val ordered: Array<String>, private val grant: Slots) : Slots {
        private val closed = java.util.concurrent.atomic.AtomicBoolean()

        override val tags: List<String>
            get() = ordered.toList()

        override val isValid: Boolean
            get() = !closed.get() && grant.isValid

        override fun close() {
            if (closed.compareAndSet(false, true)) {
                grant.close()
                for (tag in ordered) localUse(tag).held.decrementAndGet()
            }
        }
    }

    /** Gives back the first [count] of [limiters], the last taken first. */
    internal fun releaseAll(limiters: Array<CapacityLimiter>, count: Int) {
        for (index in count - 1 downTo 0) limiters[index].release()
    }

    /** Takes a slot of [limiter] if one is free now; never waits, never allocates. */
    private fun tryAcquire(tag: String, limiter: CapacityLimiter): Boolean = try {
        limiter.tryAcquire()
    } catch (_: CapacityLimiter.Off) {
        throw switchedOff(tag)
    }

    /** Takes a slot of each limiter in turn, waiting (suspended) as needed; all or none. */
    private suspend fun acquireSuspending(ordered: Array<String>, limiters: Array<CapacityLimiter>, timeout: Duration?) {
        val deadline = timeout?.let { System.nanoTime() + it.inWholeNanoseconds.coerceAtMost(Long.MAX_VALUE / 4) }
        var taken = 0
        try {
            while (taken < limiters.size) {
                val tag = ordered[taken]
                val limiter = limiters[taken]
                try {
                    if (deadline == null) {
                        limiter.acquire()
                    } else {
                        val left = deadline - System.nanoTime()
                        val got = left > 0 && withTimeoutOrNull(left.nanoseconds) {
                            limiter.acquire()
                            true
                        } == true
                        if (!got) throw timedOut(tag, limiter, java.time.Duration.ofNanos(timeout.inWholeNanoseconds))
                    }
                } catch (_: CapacityLimiter.Off) {
                    throw switchedOff(tag)
                }
                taken++
            }
        } catch (t: Throwable) {
            releaseAll(limiters, taken)
            throw t
        }
    }

    /** The distinct tags, in the one global order (sorted). */
    private fun order(tags: Array<out String>): Array<String> {
        // Java callers can pass null elements, which Kotlin's own parameter checks do not look at.
        val asPassed: Array<out String?> = tags
        for (i in asPassed.indices) if (asPassed[i] == null) throw NullPointerException("tags[$i] must not be null")
        val sorted = arrayOf(*tags)
        sorted.sort()
        var distinct = 0
        for (tag in sorted) if (distinct == 0 || sorted[distinct - 1] != tag) sorted[distinct++] = tag
        return if (distinct == sorted.size) sorted else sorted.copyOf(distinct).requireNoNulls()
    }

    private fun limitersOf(ordered: Array<String>): Array<CapacityLimiter> = Array(ordered.size) { limiter(ordered[it]) }

    private fun limiter(tag: String): CapacityLimiter =
        limits[tag] ?: throw IllegalArgumentException(
            "unknown concurrency limit \"$tag\"; known tags: " +
                (tags.takeIf { it.isNotEmpty() }?.joinToString(", ") { "\"$it\"" } ?: "none (define one with create)")
        )

    private fun switchedOff(tag: String) = IllegalStateException(
        "concurrency limit \"$tag\" has 0 slots: it is switched off, so nothing may run under it"
    )

    override fun toString(): String = "ConcurrencyLimits$tags"

    /**
     * Slots taken by [acquire]; [close] gives them back, once (closing again does nothing). May be closed from
     * any thread.
     *
     * @since 0.1 (until 0.2 a top-level `LimitSlots`)
     */
    public interface Slots : AutoCloseable {
        /** The tags held, in the order they were taken. */
        public val tags: List<String>

        /**
         * True while the slots are held: false once closed, or, with a shared store, once their lease was lost
         * (see [SharedLimitStore]); a holder doing long work checks it to stop early.
         *
         * @since 0.2
         */
        public val isValid: Boolean

        /** Gives the slots back; closing again does nothing. */
        override fun close()
    }

    private fun timedOut(tag: String, limiter: CapacityLimiter, timeout: java.time.Duration): ConcurrencyLimitTimeoutException {
        val o = limiter.occupancy()
        return ConcurrencyLimitTimeoutException(
            "no slot of concurrency limit \"$tag\" came free within $timeout (held ${o.held} / slots ${o.slots}, " +
                "waiting ${o.waiting}); slots already taken for this call were given back",
            tag, o.held, o.slots, o.waiting,
        )
    }
}

/**
 * One limit as [ConcurrencyLimits.stats] saw it.
 *
 * @since 0.1
 */
public class LimitStats internal constructor(
    public val tag: String,
    public val slots: Int,
    public val occupied: Int,
    public val waiting: Int,
    /** The time callers have spent waiting for its slots, summed, since it was defined. */
    public val totalWaitTime: java.time.Duration,
) {
    override fun toString(): String =
        "LimitStats(tag=$tag, slots=$slots, occupied=$occupied, waiting=$waiting, totalWaitTime=$totalWaitTime)"
}

/**
 * No slot of [tag] came free in time. The message gives the tag's occupancy when the wait ended; slots of
 * other tags taken for the same call were given back.
 *
 * @since 0.1
 */
public class ConcurrencyLimitTimeoutException(
    message: String,
    /** The tag whose slot did not come free. */
    public val tag: String,
    /** Its slots held when the wait ended. */
    public val held: Int,
    /** Its slots. */
    public val slots: Int,
    /** Callers waiting for it when the wait ended. */
    public val waiting: Int,
) : RuntimeException(message)

/**
 * [ConcurrencyLimits.withConcurrencyLimit] on the limits of the loop this coroutine runs on, or of
 * [RunSyncLoop.default] when it runs elsewhere.
 *
 * @since 0.1
 */
public suspend fun <T> withConcurrencyLimit(
    vararg tags: String,
    timeout: Duration? = null,
    block: suspend () -> T,
): T = loopOfThisCoroutine().limits.withConcurrencyLimit(*tags, timeout = timeout, block = block)

// ---- Entry point: the named limits of a loop ----

/** The key under which a loop keeps its limits (RunSyncLoop.attachments). */
private object LimitsKey

/**
 * The loop's named concurrency limits: define a tag once with `limits.create(tag, slots)`, then run code under
 * it with `limits.withConcurrencyLimit(tag) { }` (or the top-level [withConcurrencyLimit]). Made at first use,
 * one per loop. Java: `Bridge.limits()`.
 *
 * @since 0.1
 */
public val RunSyncLoop.limits: ConcurrencyLimits
    get() = attachments.computeIfAbsent(LimitsKey) { ConcurrencyLimits() } as ConcurrencyLimits

/**
 * Keeps this loop's named limits in [store], shared by every JVM that uses it (corobridge-limits-postgres's
 * `PostgresLimitStore`), instead of in the loop: `RunSyncLoop.create("app").useSharedLimits(store)`. Every
 * operation of [limits] then works on the store, unchanged in form; `create` and the statistics block for a round
 * trip to it, so call them off the loop thread. Returns this loop. The caller keeps [store] open while the loop
 * uses it, and closes it after the loop.
 *
 * @throws IllegalStateException if this loop's limits have been used already (its store is chosen once, first)
 * @since 0.2
 */
public fun RunSyncLoop.useSharedLimits(store: SharedLimitStore): RunSyncLoop {
    val limits = ConcurrencyLimits(store)
    val existing = attachments.putIfAbsent(LimitsKey, limits)
    check(existing == null) {
        "loop \"$name\" has used its limits already; give it a shared store before its first use of limits"
    }
    return this
}

/**
 * Named limits kept outside the loop and shared by every JVM that uses the same store: the storage behind
 * [RunSyncLoop.useSharedLimits], implemented by corobridge-limits-postgres's `PostgresLimitStore`. Its
 * `acquire` takes one slot of each tag (distinct, in name order), all or nothing; the [ConcurrencyLimits.Slots]
 * it returns gives them back when closed, and says whether they are still held. Errors are those of [ConcurrencyLimits]: [IllegalArgumentException] for an unknown tag,
 * [IllegalStateException] for one switched off, [ConcurrencyLimitTimeoutException] at the timeout.
 *
 * @since 0.2
 */
public interface SharedLimitStore : AutoCloseable {
    /**
     * Defines [tag] with [slots]; the same size again changes nothing, another size is refused with
     * [IllegalStateException] while some of its slots are held (as for in-process limits); blocks for the store.
     */
    public fun create(tag: String, slots: Int)

    /** Every tag with its size, sorted; blocks for the store. */
    public fun limits(): Map<String, Int>

    /** Slots of [tag] held now, in every JVM; blocks for the store. */
    public fun occupied(tag: String): Int

    /**
     * Takes one slot of each of [tags], suspending until all are free or [timeout] (null: no limit) has passed. A
     * `java.time.Duration`, so that Java can implement this interface (a Kotlin `Duration` parameter gives the method
     * a mangled name).
     */
    public suspend fun acquire(tags: List<String>, timeout: java.time.Duration? = null): ConcurrencyLimits.Slots

    /** Takes one slot of each of [tags], blocking the calling thread until all are free or [timeout] has passed. */
    public fun acquireBlocking(tags: List<String>, timeout: java.time.Duration): ConcurrencyLimits.Slots

    /** Defines (or replaces) the rate limit [tag]; see [ConcurrencyLimits.createRate]. Blocks for the store. */
    public fun createRate(tag: String, perSecond: Double, burst: Int)

    /**
     * Reserves the next moment the rate limit [tag] lets one pass, for every JVM; returns how long, in nanoseconds,
     * to wait for it, or -1 (nothing reserved) if that is more than [maxWaitNanos]. Blocks for the store (never
     * called on a loop thread).
     */
    public fun reserveRate(tag: String, maxWaitNanos: Long): Long
}

/**
 * Opens a [SharedLimitStore] from a URL, for the default loop's setting `corobridge.limitsStore`
 * (docs/settings.md). Found with `java.util.ServiceLoader`: corobridge-limits-postgres registers one for
 * `jdbc:postgresql:` URLs.
 *
 * @since 0.2
 */
public interface SharedLimitStoreProvider {
    /** A store opened at [url], or null if this provider does not take such URLs. */
    public fun open(url: String): SharedLimitStore?
}

/** The loop's limits if any were ever asked for, without making them (for [RunSyncLoop.stats]). */
internal fun RunSyncLoop.limitsIfMade(): ConcurrencyLimits? = attachments[LimitsKey] as ConcurrencyLimits?
