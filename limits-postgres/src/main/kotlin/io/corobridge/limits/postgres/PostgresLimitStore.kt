package io.corobridge.limits.postgres

import io.corobridge.core.ConcurrencyLimitTimeoutException
import io.corobridge.core.ConcurrencyLimits
import io.corobridge.core.RunContext
import io.corobridge.core.SharedLimitStore
import java.lang.management.ManagementFactory
import java.net.InetAddress
import java.sql.Connection
import java.sql.SQLException
import java.time.Instant
import java.util.concurrent.CompletableFuture
import java.util.concurrent.ExecutionException
import java.util.concurrent.TimeUnit
import java.util.concurrent.TimeoutException
import java.util.concurrent.atomic.AtomicBoolean
import java.util.concurrent.atomic.AtomicInteger
import javax.sql.DataSource
import kotlin.time.Duration.Companion.seconds
import kotlinx.coroutines.CoroutineName
import kotlinx.coroutines.Job
import kotlinx.coroutines.currentCoroutineContext
import kotlinx.coroutines.future.await
import kotlinx.coroutines.withTimeoutOrNull
import kotlin.time.toKotlinDuration
import org.postgresql.ds.PGSimpleDataSource

/**
 * Named concurrency limits kept in a PostgreSQL database, shared by every JVM that opens a store on it: "at most 5
 * running with tag `db`" across all processes of a service, the counterpart of Prefect's server-side concurrency
 * limits (`prefect concurrency-limit create db 5`).
 *
 * ```kotlin
 * val store = PostgresLimitStore.open("jdbc:postgresql://db/app?user=app")
 * val loop = RunSyncLoop.create("app").useSharedLimits(store)    // the loop's limits now live in the store
 * loop.limits.create("db", 5)
 * loop.limits.withConcurrencyLimit("db") { query() }            // suspends until a slot is free in any JVM
 * ```
 *
 * Through a loop, every operation of `ConcurrencyLimits` works as with in-process limits; the store's own
 * methods add what only a shared store has (holders, reset, delete).
 *
 * - **Leases.** Each slot held is a row with an expiry set by the database's clock (so machines' clocks do not
 *   matter), renewed in the background every third of [Settings.leaseTime]. A holder that dies (killed, cut off)
 *   stops renewing, and its slots come back when its leases expire. A holder whose renewals fail until its lease
 *   has run out is told: [Settings.onLeaseLost] runs, and by default the coroutine that acquired the slots is
 *   cancelled and an ERROR is logged; the slots are then no longer counted as held, so they are never over-allocated.
 * - **Several tags** are taken in one statement, all or nothing, locking the tags' rows in name order: opposite
 *   orders in different processes never deadlock.
 * - **Waiting** is a queue in the database, first come, first served across every JVM: a request that finds its
 *   tags full is queued there, and the statement that frees a slot grants it to the oldest request queued that
 *   fits and wakes only that request's store, by `NOTIFY`. A fallback poll ([Settings.pollInterval]) covers lost
 *   notifications and expired leases. A request that gives up (timeout, cancellation) leaves the queue; the
 *   requests of a JVM that died leave it when their lease runs out.
 * - **Threads.** Every JDBC call runs on the store's own threads (`corobridge-limits-<n>` and its listener), never
 *   on a loop thread: [acquire] suspends, [acquireBlocking] blocks only its caller.
 * - **The database away.** Acquisitions keep retrying and fail at their timeout, naming the database error; held
 *   slots follow the lease rule above; the store recovers by itself when the database comes back.
 *
 * Safe to use from any thread. Close it to release everything it holds and end its threads.
 *
 * @since 0.2
 */
public class PostgresLimitStore private constructor(
    private val dataSource: DataSource,
    public val settings: Settings,
) : SharedLimitStore, AutoCloseable {

    /**
     * How a store behaves.
     *
     * @property leaseTime how long a slot stays held without renewal (30 s unless set); renewals run every third
     * @property pollInterval the longest a queued request goes without checking the database (1 s unless set), in case
     *   its `NOTIFY` was lost or a holder died without releasing
     * @property onLeaseLost called, on the store's thread, for slots whose lease ran out before it could be renewed;
     *   an ERROR is logged in any case, and the acquiring coroutine is cancelled after the handler returns, whatever
     *   it does
     * @since 0.2
     */
    public class Settings @JvmOverloads constructor(
        public val leaseTime: java.time.Duration = java.time.Duration.ofSeconds(30),
        public val pollInterval: java.time.Duration = java.time.Duration.ofSeconds(1),
        public val onLeaseLost: ((Grant) -> Unit)? = null,
    ) {
        init {
            require(leaseTime >= java.time.Duration.ofSeconds(1)) { "leaseTime must be at least 1 s, was $leaseTime" }
            require(!pollInterval.isNegative && !pollInterval.isZero) { "pollInterval must be positive, was $pollInterval" }
        }
    }

    /**
     * Slots held under one acquisition, one per tag; [close] gives them back (once; closing again does nothing).
     *
     * @since 0.2
     */
    public class Grant internal constructor(
        private val store: PostgresLimitStore,
        /** The tags held, in name order. */
        override val tags: List<String>,
        internal val leaseIds: LongArray,
        internal val job: Job?,
    ) : ConcurrencyLimits.Slots {
        private val closed = AtomicBoolean()

        @Volatile
        internal var lost: Boolean = false

        /** False once the lease ran out unrenewed (see [Settings.onLeaseLost]) or the grant was closed. */
        override val isValid: Boolean
            get() = !lost && !closed.get()

        /** Gives the slots back, at once and without blocking (the store's thread deletes the leases). */
        override fun close() {
            if (closed.compareAndSet(false, true)) store.worker.release(this)
        }

        override fun toString(): String = "Grant($tags, leases ${leaseIds.toList()})"
    }

    /**
     * One slot held, as the database sees it.
     *
     * @since 0.2
     */
    public data class Holder(
        val tag: String,
        /** The thread or coroutine that acquired it. */
        val holder: String,
        val host: String,
        val pid: Long,
        val since: Instant,
        val expiresAt: Instant,
        val leaseId: Long,
    )

    /**
     * One request queued for slots, as the database sees it.
     *
     * @since 0.2
     */
    public data class Waiter(
        /** Every tag it asks one slot of. */
        val tags: List<String>,
        /** The thread or coroutine waiting. */
        val holder: String,
        val host: String,
        val pid: Long,
        /** When it was queued, by the database's clock. */
        val since: Instant,
    )

    /**
     * A rate limit: at most [perSecond] passes a second across every JVM, with bursts of [burst].
     *
     * @since 0.2
     */
    public data class Rate(val tag: String, val perSecond: Double, val burst: Int)

    internal val identity = Identity(host(), ProcessHandle.current().pid())
    internal val worker = StoreWorker(this, dataSource, settings, stores.incrementAndGet())

    /**
     * Defines [tag] with [slots] slots, or changes its size (0 switches it off: acquiring it then fails at once).
     * Shrinking takes no slot from its holders: new acquisitions wait until fewer are held than the new size.
     * Blocks the caller for one database round trip.
     *
     * @throws IllegalArgumentException if [tag] is blank or [slots] negative
     * @since 0.2
     */
    override fun create(tag: String, slots: Int) {
        require(tag.isNotBlank()) { "tag must not be blank, was \"$tag\"" }
        require(slots >= 0) { "slots must be 0 (tag switched off) or more, was $slots for tag \"$tag\"" }
        checkTag(tag)
        direct { connection ->
            connection.autoCommit = false
            try {
                connection.prepareStatement(
                    "INSERT INTO corobridge_limit (tag, slots) VALUES (?, ?) ON CONFLICT (tag) DO NOTHING"
                ).use {
                    it.setString(1, tag)
                    it.setInt(2, slots)
                    it.executeUpdate()
                }
                val existing = connection.prepareStatement("SELECT slots FROM corobridge_limit WHERE tag = ? FOR UPDATE").use {
                    it.setString(1, tag)
                    it.executeQuery().use { rows -> rows.next(); rows.getInt(1) }
                }
                if (existing != slots) {
                    val held = heldIn(connection, tag)
                    check(held == 0) {
                        "concurrency limit \"$tag\" cannot change from $existing to $slots slots while $held of them are " +
                            "held; redefine it when none is, or resize it with update(tag, slots)"
                    }
                    resizeIn(connection, tag, slots)
                }
                connection.commit()
            } catch (failure: Throwable) {
                connection.rollback()
                throw failure
            }
            connection.autoCommit = true
            serve(connection, tag) // a larger limit may let waiters in, one switched off fails them
        }
    }

    /**
     * Changes the size of [tag], whether or not its slots are held (the operator's resize, `corobridge-limits
     * update`): holders keep their slots, and new ones wait until fewer are held than the new size.
     *
     * @throws IllegalArgumentException if [tag] is unknown or [slots] negative
     * @since 0.2
     */
    public fun update(tag: String, slots: Int) {
        require(slots >= 0) { "slots must be 0 (tag switched off) or more, was $slots for tag \"$tag\"" }
        val changed = direct { connection -> resizeIn(connection, tag, slots).also { serve(connection, tag) } }
        require(changed) { "unknown concurrency limit \"$tag\" in the shared store" }
    }

    override fun createRate(tag: String, perSecond: Double, burst: Int) {
        checkTag(tag)
        require(perSecond >= MIN_RATE_PER_SECOND && perSecond.isFinite()) {
            "perSecond must be at least one a year ($MIN_RATE_PER_SECOND) and finite, was $perSecond for tag \"$tag\""
        }
        require(burst >= 1) { "burst must be at least 1, was $burst for tag \"$tag\"" }
        direct { connection ->
            connection.prepareStatement(
                "INSERT INTO corobridge_rate (tag, per_second, burst) VALUES (?, ?, ?) ON CONFLICT (tag) DO UPDATE " +
                    "SET per_second = excluded.per_second, burst = excluded.burst, tat = clock_timestamp()"
            ).use {
                it.setString(1, tag)
                it.setDouble(2, perSecond)
                it.setInt(3, burst)
                it.executeUpdate()
            }
        }
    }

    /**
     * One transaction: lock the rate's row, reserve the next moment by the database's clock (the generic cell rate
     * algorithm, as in-process), move the row's timestamp on unless the wait is too long.
     */
    override fun reserveRate(tag: String, maxWaitNanos: Long): Long = direct { connection ->
        connection.autoCommit = false
        try {
            val row = connection.prepareStatement(
                "SELECT extract(epoch FROM tat), extract(epoch FROM clock_timestamp()), per_second, burst " +
                    "FROM corobridge_rate WHERE tag = ? FOR UPDATE"
            ).use {
                it.setString(1, tag)
                it.executeQuery().use { rows ->
                    if (rows.next()) doubleArrayOf(rows.getDouble(1), rows.getDouble(2), rows.getDouble(3), rows.getInt(4).toDouble())
                    else null
                }
            } ?: throw IllegalArgumentException("unknown rate limit \"${tag.take(80)}\" in the shared store; define it with createRate")
            val (tat, now, perSecond, burst) = row.toList()
            val interval = 1.0 / perSecond
            val start = maxOf(tat, now)
            val waitSeconds = maxOf(0.0, start - (burst - 1) * interval - now)
            check(waitSeconds.isFinite() && (start + interval).isFinite()) {
                "rate limit \"${tag.take(80)}\" in the shared store has an unusable rate ($perSecond a second, next pass " +
                    "at $tat): redefine it with createRate (at least one a year)"
            }
            val wait = (waitSeconds * 1e9).toLong()
            if (wait > maxWaitNanos) {
                connection.rollback()
                return@direct -1L
            }
            connection.prepareStatement("UPDATE corobridge_rate SET tat = to_timestamp(?) WHERE tag = ?").use {
                it.setDouble(1, start + interval)
                it.setString(2, tag)
                it.executeUpdate()
            }
            connection.commit()
            wait
        } catch (failure: Throwable) {
            connection.rollback()
            throw failure
        }
    }

    private fun resizeIn(connection: Connection, tag: String, slots: Int): Boolean =
        connection.prepareStatement("UPDATE corobridge_limit SET slots = ?, updated_at = now() WHERE tag = ?").use {
            it.setInt(1, slots)
            it.setString(2, tag)
            it.executeUpdate() > 0
        }

    private fun checkTag(tag: String) {
        require(tag.length <= MAX_TAG) { "tag must be at most $MAX_TAG characters, was ${tag.length}" }
        require(tag.none { it.isISOControl() || it == ',' || it == '=' }) {
            "tag must not hold control characters, commas or '=' (it could not be named in settings), was \"${tag.take(40)}\""
        }
    }

    /**
     * Deletes [tag] and every lease of it; holders' grants become invalid at their next renewal. True if it existed.
     *
     * @since 0.2
     */
    public fun delete(tag: String): Boolean = direct { connection ->
        connection.prepareStatement("DELETE FROM corobridge_limit WHERE tag = ?").use {
            it.setString(1, tag)
            it.executeUpdate() > 0
        }.also { serve(connection, tag) } // its waiters fail
    }

    /**
     * Takes every slot of [tag] back from its holders (as Prefect's `concurrency-limit reset` does): for holders
     * that died without their leases having expired yet. Returns how many leases were ended.
     *
     * @since 0.2
     */
    public fun reset(tag: String): Int = direct { connection ->
        connection.prepareStatement("DELETE FROM corobridge_lease WHERE tag = ?").use {
            it.setString(1, tag)
            it.executeUpdate()
        }.also { serve(connection, tag) }
    }

    /** The tags defined, sorted, with their sizes. */
    override fun limits(): Map<String, Int> = direct { connection ->
        connection.createStatement().use { statement ->
            statement.executeQuery("SELECT tag, slots FROM corobridge_limit ORDER BY tag").use { rows ->
                val result = LinkedHashMap<String, Int>()
                while (rows.next()) result[rows.getString(1)] = rows.getInt(2)
                result
            }
        }
    }

    /** Slots of [tag] held now, in every JVM (leases not expired by the database's clock). */
    override fun occupied(tag: String): Int = direct { connection -> heldIn(connection, tag) }

    /** Slots of [tag] held now: leases not expired by the database's clock. */
    private fun heldIn(connection: Connection, tag: String): Int =
        connection.prepareStatement("SELECT count(*) FROM corobridge_lease WHERE tag = ? AND expires_at > now()").use {
            it.setString(1, tag)
            it.executeQuery().use { rows -> rows.next(); rows.getInt(1) }
        }

    /** Who holds which slot now, in every JVM, oldest first; of [tag] only, unless it is null. */
    @JvmOverloads
    public fun holders(tag: String? = null): List<Holder> = rowsOf(
        "SELECT tag, holder, host, pid, since, expires_at, id FROM corobridge_lease " +
            "WHERE expires_at > now() AND (?::text IS NULL OR tag = ?) ORDER BY since, id",
        tag,
    ) { rows ->
        Holder(
            rows.getString(1), rows.getString(2), rows.getString(3), rows.getLong(4),
            rows.getTimestamp(5).toInstant(), rows.getTimestamp(6).toInstant(), rows.getLong(7),
        )
    }

    /**
     * The requests queued for slots now, in every JVM, in the order they will be served; of those that want [tag]
     * only, unless it is null.
     *
     * @since 0.2
     */
    @JvmOverloads
    public fun waiters(tag: String? = null): List<Waiter> = rowsOf(
        "SELECT q.tags, u.holder, q.host, q.pid, u.since FROM corobridge_waiter AS q, " +
            "unnest(q.holders, q.since) AS u(holder, since) " +
            "WHERE q.expires_at > now() AND (?::text IS NULL OR ? = ANY (q.tags)) ORDER BY u.since, q.store",
        tag,
    ) { rows ->
        @Suppress("UNCHECKED_CAST")
        val tags = (rows.getArray(1).array as Array<String>).toList()
        Waiter(tags, rows.getString(2), rows.getString(3), rows.getLong(4), rows.getTimestamp(5).toInstant())
    }

    /** Every row of [sql], whose two parameters are both [tag] (null: every tag), read with [row]. */
    private fun <T> rowsOf(sql: String, tag: String?, row: (java.sql.ResultSet) -> T): List<T> = direct { connection ->
        connection.prepareStatement(sql).use {
            it.setString(1, tag)
            it.setString(2, tag)
            it.executeQuery().use { rows ->
                val result = ArrayList<T>()
                while (rows.next()) result += row(rows)
                result
            }
        }
    }

    /**
     * Every rate limit (see [createRate]), sorted by tag.
     *
     * @since 0.2
     */
    public fun rates(): List<Rate> = direct { connection ->
        connection.createStatement().use { statement ->
            statement.executeQuery("SELECT tag, per_second, burst FROM corobridge_rate ORDER BY tag").use { rows ->
                val result = ArrayList<Rate>()
                while (rows.next()) result += Rate(rows.getString(1), rows.getDouble(2), rows.getInt(3))
                result
            }
        }
    }

    /**
     * Deletes the rate limit [tag]; true if it existed. Callers of `rateLimit` on it then fail as for an unknown tag.
     *
     * @since 0.2
     */
    public fun deleteRate(tag: String): Boolean = direct { connection ->
        connection.prepareStatement("DELETE FROM corobridge_rate WHERE tag = ?").use {
            it.setString(1, tag)
            it.executeUpdate() > 0
        }
    }

    /**
     * Takes one slot of each of [tags] in every JVM's view, suspending (on no thread) until all are free or [timeout]
     * has passed. Close the grant to give them back.
     *
     * Cancellable: a coroutine cancelled while waiting takes nothing. If the lease is lost later (see the class),
     * this coroutine is cancelled.
     *
     * @throws ConcurrencyLimitTimeoutException if they were not all free in time; its cause is the database's error
     *   if the database could not be reached
     * @throws IllegalArgumentException if a tag is unknown, or [tags] is empty
     * @throws IllegalStateException if a tag is switched off (0 slots)
     * @since 0.2
     */
    override suspend fun acquire(tags: List<String>, timeout: java.time.Duration?): Grant {
        require(timeout == null || (!timeout.isNegative && !timeout.isZero)) { "timeout must be positive, was $timeout" }
        val context = currentCoroutineContext()
        val holder = context[CoroutineName]?.name?.let { "coroutine $it" } ?: "thread ${Thread.currentThread().name}"
        val request = worker.submit(ordered(tags), holder, timeout?.toNanos(), context[Job])
        try {
            // The store fails the request at its deadline; the extra second covers a store whose thread is stuck in a
            // call to a database that does not answer.
            val guard = timeout?.let { it.toKotlinDuration() + 1.seconds }
            if (guard == null) return request.future.await()
            return withTimeoutOrNull(guard) { request.future.await() } ?: throw storeStuck(tags, timeout)
        } catch (failure: Throwable) {
            worker.abandon(request)
            throw unwrap(failure)
        }
    }

    /**
     * Takes one slot of each of [tags], blocking the calling thread until all are free or [timeout] has passed.
     * Close the grant (try-with-resources) to give them back.
     *
     * @throws ConcurrencyLimitTimeoutException if they were not all free in time
     * @throws java.util.concurrent.CancellationException if the thread is interrupted while waiting (nothing is then
     *   held, and the flag is set again)
     * @throws IllegalStateException on a loop thread, where blocking would stall the loop (use [acquire] there)
     * @since 0.2
     */
    override fun acquireBlocking(tags: List<String>, timeout: java.time.Duration): Grant {
        require(!timeout.isNegative && !timeout.isZero) { "timeout must be positive, was $timeout" }
        check(!RunContext.isOnLoopThread) {
            "acquireBlocking blocks its thread, and this is loop thread \"${Thread.currentThread().name}\"; " +
                "use the suspending acquire in code that runs on a loop"
        }
        val request = worker.submit(ordered(tags), "thread ${Thread.currentThread().name}", timeout.toNanos(), null)
        try {
            // The store fails the request at its deadline; the extra second only guards against a stuck store.
            return request.future.get(timeout.toNanos() + TimeUnit.SECONDS.toNanos(1), TimeUnit.NANOSECONDS)
        } catch (_: InterruptedException) {
            worker.abandon(request)
            Thread.currentThread().interrupt()
            throw java.util.concurrent.CancellationException("interrupted while waiting for concurrency limits $tags; no slot is held")
        } catch (failure: ExecutionException) {
            worker.abandon(request)
            throw unwrap(failure)
        } catch (_: TimeoutException) {
            worker.abandon(request)
            throw storeStuck(tags, timeout)
        }
    }

    /** A timeout while the store's thread waits for a database that does not answer. */
    private fun storeStuck(tags: List<String>, timeout: java.time.Duration): ConcurrencyLimitTimeoutException =
        ConcurrencyLimitTimeoutException(
            "no slot of concurrency limits ${tags.joinToString { "\"$it\"" }} came free in the shared store within " +
                "$timeout: its database did not answer (the store's thread is still waiting for it)",
            tags.first(), -1, -1, -1,
        )

    /**
     * Releases every slot this store holds, and ends its threads. Blocks for a last database round trip, and at most
     * about 10 s if the database does not answer (the leases then expire by themselves). Also run at JVM exit for a
     * store not closed by then, so a process stopped normally gives its slots back at once.
     */
    override fun close() {
        worker.close()
        if (Thread.currentThread() !== exitHook) runCatching { Runtime.getRuntime().removeShutdownHook(exitHook) }
    }

    private val exitHook = Thread({ worker.close() }, "corobridge-limits-exit")

    override fun toString(): String = "PostgresLimitStore(${worker.threadName})"

    private fun ordered(tags: List<String>): Array<String> {
        require(tags.isNotEmpty()) { "tags must not be empty" }
        for ((index, tag) in tags.withIndex()) {
            @Suppress("SENSELESS_COMPARISON") // Java callers can pass null elements
            if (tag == null) throw NullPointerException("tags[$index] must not be null")
        }
        return tags.toSortedSet().toTypedArray()
    }

    /** A blocking JDBC round trip on the caller's thread, for the administrative operations. */
    private fun <T> direct(work: (Connection) -> T): T {
        check(!RunContext.isOnLoopThread) {
            "this blocks for a database round trip, and this is loop thread \"${Thread.currentThread().name}\"; " +
                "call it from a worker thread (runInWorkerThread) or a thread of your own"
        }
        dataSource.connection.use { connection ->
            connection.autoCommit = true
            return work(connection)
        }
    }

    /** Serves the database's queue of waiters for [tag] (schema-3.sql), after a change that may free or refuse slots. */
    private fun serve(connection: Connection, tag: String) {
        connection.prepareStatement("SELECT corobridge_serve(ARRAY[?])").use {
            it.setString(1, tag)
            it.executeQuery().close()
        }
    }

    private fun unwrap(failure: Throwable): Throwable =
        if (failure is ExecutionException || failure is java.util.concurrent.CompletionException) failure.cause ?: failure else failure

    internal class Identity(val host: String, val pid: Long)

    public companion object {
        /** One pass a year: the slowest rate createRate takes (as in-process limits). */
        private const val MIN_RATE_PER_SECOND: Double = 1.0 / (365 * 86_400)

        /** The channel releases are announced on. */
        internal const val CHANNEL: String = "corobridge_limits"

        /** The longest tag: room to name things, far below the index's row limit. */
        private const val MAX_TAG = 200

        private val stores = AtomicInteger()

        /**
         * Opens a store on [dataSource] (a pool, best), creating or migrating its tables, and starts its threads.
         *
         * @throws SQLException if the database cannot be reached or migrated
         * @since 0.2
         */
        @JvmStatic
        @JvmOverloads
        public fun open(dataSource: DataSource, settings: Settings = Settings()): PostgresLimitStore {
            dataSource.connection.use { Schema.migrate(it) }
            return PostgresLimitStore(dataSource, settings).also {
                it.worker.start()
                runCatching { Runtime.getRuntime().addShutdownHook(it.exitHook) } // not once the JVM is exiting
            }
        }

        /**
         * Opens a store on the database at [jdbcUrl] (`jdbc:postgresql://host/db?user=..&password=..`).
         *
         * @since 0.2
         */
        @JvmStatic
        @JvmOverloads
        public fun open(jdbcUrl: String, settings: Settings = Settings()): PostgresLimitStore {
            require(jdbcUrl.startsWith("jdbc:postgresql:")) { "jdbcUrl must start with jdbc:postgresql:, was \"$jdbcUrl\"" }
            val dataSource = PGSimpleDataSource()
            dataSource.setUrl(jdbcUrl)
            // The driver waits forever by default; a database that stops answering must not stall the store.
            if (!jdbcUrl.contains("connectTimeout=")) dataSource.connectTimeout = 5
            if (!jdbcUrl.contains("socketTimeout=")) dataSource.socketTimeout = 30
            return open(dataSource, settings)
        }

        private fun host(): String = try {
            InetAddress.getLocalHost().hostName
        } catch (_: Exception) {
            ManagementFactory.getRuntimeMXBean().name.substringAfter('@', "unknown")
        }
    }
}
