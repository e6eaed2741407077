package io.corobridge.limits.postgres

import io.corobridge.limits.postgres.PostgresLimitStore.Grant
import java.sql.Connection
import java.sql.SQLException
import java.util.concurrent.CompletableFuture
import java.util.concurrent.LinkedBlockingQueue
import java.util.concurrent.TimeUnit
import javax.sql.DataSource
import kotlinx.coroutines.CancellationException
import kotlinx.coroutines.Job
import org.postgresql.PGConnection

/*
 * The store's two threads. The worker owns every JDBC call of acquiring, releasing and renewing, and the store's
 * state (waiting requests in arrival order, grants held); other threads reach it only through its command queue,
 * so none of that state needs a lock. The listener holds a second connection that LISTENs for releases anywhere
 * and wakes the worker.
 *
 * One round of the worker: take the commands queued (new requests, abandoned ones, releases, wake-ups), give back
 * released leases (so waiters in this JVM get them at once), fail requests past their deadline, try the waiting
 * requests, and renew leases when a third of the lease time has passed. Trying the waiting requests is one
 * transaction for all of them: lock the rows of every tag involved in name order, count the leases not expired,
 * then grant requests in arrival order while slots are free; expired leases are deleted separately, each renewal
 * period. A request that cannot be granted blocks
 * its tags for the requests behind it, so a tag's waiters in this JVM are served first come, first served.
 */
internal class StoreWorker(
    private val store: PostgresLimitStore,
    private val dataSource: DataSource,
    private val settings: PostgresLimitStore.Settings,
    number: Int,
) {
    val threadName = "corobridge-limits-$number"

    class Request(
        val tags: Array<String>,
        val holder: String,
        val deadlineNanos: Long?,
        val job: Job?,
    ) {
        val future = CompletableFuture<Grant>()
        val startNanos: Long = System.nanoTime()

        /** What the last attempt saw of the first tag that had no free slot: tag, held, slots. */
        var lastSeen: Triple<String, Int, Int>? = null
    }

    private class Abandon(val request: Request)
    private class Release(val grant: Grant)
    private object Wake
    private object Close
    private object Halt

    private val commands = LinkedBlockingQueue<Any>()
    private val pending = ArrayDeque<Request>()
    private val active = LinkedHashMap<Grant, Long>() // grant -> System.nanoTime() before its last good renewal
    private val unreleased = ArrayList<Grant>()
    private var connection: Connection? = null
    private var lastFailure: SQLException? = null

    @Volatile
    private var closing = false

    /** Requests of this JVM waiting for slots, as of the end of the worker's last round. */
    @Volatile
    var waiting: Int = 0
        private set

    private val leaseNanos = settings.leaseTime.toNanos()
    private val renewEveryNanos = leaseNanos / 3
    private val pollNanos = settings.pollInterval.toNanos()

    private val thread = Thread(::work, threadName).apply { isDaemon = true }
    private val listener = Thread(::listen, "$threadName-listener").apply { isDaemon = true }

    fun start() {
        thread.start()
        listener.start()
    }

    fun submit(tags: Array<String>, holder: String, timeoutNanos: Long?, job: Job?): Request {
        check(!closing) { "the limit store is closed" }
        val request = Request(tags, holder, timeoutNanos?.let { System.nanoTime() + it }, job)
        commands.add(request)
        return request
    }

    fun abandon(request: Request) {
        commands.add(Abandon(request))
    }

    fun release(grant: Grant) {
        commands.add(Release(grant))
    }

    fun wake() {
        commands.add(Wake)
    }

    /** Tests: stops both threads at once, releasing nothing and renewing nothing, as a killed process would. */
    fun haltForTest() {
        closing = true
        commands.add(Halt)
        thread.join()
        listener.join()
    }

    fun close() {
        if (closing) return
        closing = true
        commands.add(Close)
        if (Thread.currentThread() !== thread) thread.join(TimeUnit.SECONDS.toMillis(10))
        listener.join(TimeUnit.SECONDS.toMillis(5))
    }

    private fun work() {
        var nextRenewal = System.nanoTime() + renewEveryNanos
        while (true) {
            try {
                if (!round(nextRenewal)) return
            } catch (failure: Throwable) {
                if (failure is VirtualMachineError) throw failure
                logger.log(System.Logger.Level.ERROR, "corobridge: the limit store's thread met an unexpected failure and goes on", failure)
            }
            if (System.nanoTime() - nextRenewal >= 0) {
                try {
                    renew()
                    sweep()
                } catch (failure: Throwable) {
                    if (failure is VirtualMachineError) throw failure
                    logger.log(System.Logger.Level.ERROR, "corobridge: renewing leases failed unexpectedly", failure)
                }
                nextRenewal = System.nanoTime() + renewEveryNanos
            }
        }
    }

    /** One round (see the top of the file); false once the store is closed. */
    private fun round(nextRenewal: Long): Boolean {
        val now = System.nanoTime()
        var wait = nextRenewal - now
        if (pending.isNotEmpty()) {
            wait = minOf(wait, pollNanos)
            pending.mapNotNull { it.deadlineNanos }.minOrNull()?.let { wait = minOf(wait, it - now) }
        }
        var command: Any? = commands.poll(maxOf(wait, 0L), TimeUnit.NANOSECONDS)
        var attempt = command == null && pending.isNotEmpty() // the fallback poll
        var close = false
        while (command != null) {
            when (command) {
                is Request -> {
                    pending.addLast(command)
                    attempt = true
                }
                is Abandon -> abandoned(command.request)
                is Release -> unreleased.add(command.grant).also { active.remove(command.grant) }
                Wake -> attempt = true
                Close -> close = true
                Halt -> {
                    connection?.let { runCatching { it.close() } }
                    return false
                }
            }
            command = commands.poll()
        }
        if (close) {
            shutDown()
            return false
        }
        // Not retried here at once: the release's NOTIFY wakes every store, this one too, so a JVM that releases
        // does not keep handing its slots to its own waiters ahead of the other JVMs' (it starved them).
        if (unreleased.isNotEmpty()) releaseLeases()
        failExpired()
        if (attempt && pending.isNotEmpty()) tryGrant()
        waiting = pending.size
        return true
    }

    /** A caller stopped waiting (cancelled, interrupted): forget its request, give back a grant it never took. */
    private fun abandoned(request: Request) {
        pending.remove(request)
        val future = request.future
        if (future.isDone && !future.isCancelled && !future.isCompletedExceptionally) future.getNow(null)?.close()
    }

    private fun failExpired() {
        val now = System.nanoTime()
        val iterator = pending.iterator()
        while (iterator.hasNext()) {
            val request = iterator.next()
            val deadline = request.deadlineNanos ?: continue
            if (request.future.isDone) {
                iterator.remove()
            } else if (now - deadline >= 0) {
                iterator.remove()
                request.future.completeExceptionally(timedOut(request))
            }
        }
    }

    private fun timedOut(request: Request): Throwable {
        val waited = java.time.Duration.ofNanos(System.nanoTime() - request.startNanos)
        val seen = request.lastSeen
        val waiting = pending.count { other -> other.tags.any { it == seen?.first } }
        val message = if (seen != null && lastFailure == null) {
            "no slot of concurrency limit \"${seen.first}\" came free in the shared store within $waited (held " +
                "${seen.second} / slots ${seen.third} across every JVM, $waiting more waiting here); slots already " +
                "taken for this call were given back"
        } else {
            "no slot of concurrency limits ${request.tags.joinToString { "\"$it\"" }} came free in the shared store " +
                "within $waited" + (lastFailure?.let { "; the database could not be used: $it" } ?: "")
        }
        return io.corobridge.core.ConcurrencyLimitTimeoutException(
            message, seen?.first ?: request.tags.first(), seen?.second ?: -1, seen?.third ?: -1, waiting,
        ).also { error -> lastFailure?.let { error.initCause(it) } }
    }

    private fun tryGrant() {
        val candidates = pending.filter { !it.future.isDone }
        pending.removeAll { it.future.isDone }
        if (candidates.isEmpty()) return
        val tags = candidates.flatMap { it.tags.asList() }.toSortedSet().toTypedArray()
        val granted = ArrayList<Pair<Request, LongArray>>()
        val refused = ArrayList<Pair<Request, Throwable>>()
        try {
            val db = connection()
            val tagArray = db.createArrayOf("text", tags)
            val slots = HashMap<String, Int>()
            db.prepareStatement("SELECT tag, slots FROM corobridge_limit WHERE tag = ANY(?) ORDER BY tag FOR UPDATE").use {
                it.setArray(1, tagArray)
                it.executeQuery().use { rows -> while (rows.next()) slots[rows.getString(1)] = rows.getInt(2) }
            }
            // Counted after the rows are locked, in a statement of its own: its snapshot then sees every lease
            // committed before the lock was granted. Expired leases are not counted; sweep() deletes them.
            val held = HashMap<String, Int>()
            db.prepareStatement(
                "SELECT tag, count(*) FROM corobridge_lease WHERE tag = ANY(?) AND expires_at > now() GROUP BY tag"
            ).use {
                it.setArray(1, tagArray)
                it.executeQuery().use { rows -> while (rows.next()) held[rows.getString(1)] = rows.getInt(2) }
            }
            val blocked = HashSet<String>()
            for (request in candidates) {
                val unknown = request.tags.firstOrNull { it !in slots }
                if (unknown != null) {
                    refused += request to IllegalArgumentException(
                        "unknown concurrency limit \"${unknown.take(80)}\" in the shared store; known tags: ${knownTags(db)}"
                    )
                    continue
                }
                val off = request.tags.firstOrNull { slots[it] == 0 }
                if (off != null) {
                    refused += request to IllegalStateException(
                        "concurrency limit \"$off\" has 0 slots: it is switched off, so nothing may run under it"
                    )
                    continue
                }
                if (request.tags.any { it in blocked }) continue
                val full = request.tags.firstOrNull { (held[it] ?: 0) >= slots.getValue(it) }
                if (full != null) {
                    request.lastSeen = Triple(full, held[full] ?: 0, slots.getValue(full))
                    blocked.addAll(request.tags)
                    continue
                }
                granted += request to insertLeases(db, request)
                for (tag in request.tags) held[tag] = (held[tag] ?: 0) + 1
            }
            db.commit()
            lastFailure = null
        } catch (failure: Throwable) {
            // Any failure, not only the database's: a transaction left open would keep the tags' rows locked,
            // and every other JVM's store waiting on them.
            lost(failure)
            return
        }
        for ((request, error) in refused) {
            pending.remove(request)
            request.future.completeExceptionally(error)
        }
        val renewedFrom = System.nanoTime() - leaseNanos / 10 // a margin for the round trip that set the expiry
        for ((request, ids) in granted) {
            pending.remove(request)
            val grant = Grant(store, request.tags.asList(), ids, request.job)
            active[grant] = renewedFrom
            if (!request.future.complete(grant)) grant.close() // the caller gave up meanwhile
        }
    }

    private fun knownTags(db: Connection): String {
        val tags = db.createStatement().use { statement ->
            statement.executeQuery("SELECT tag FROM corobridge_limit ORDER BY tag LIMIT 21").use { rows ->
                generateSequence { if (rows.next()) rows.getString(1) else null }.toList()
            }
        }
        if (tags.isEmpty()) return "none (define one with create)"
        return tags.take(20).joinToString(", ") { "\"${it.take(40)}\"" } + if (tags.size > 20) ", ..." else ""
    }

    private fun insertLeases(db: Connection, request: Request): LongArray {
        db.prepareStatement(
            "INSERT INTO corobridge_lease (tag, holder, host, pid, expires_at) " +
                "SELECT t, ?, ?, ?, now() + make_interval(secs => ?) FROM unnest(?::text[]) AS t RETURNING id, tag"
        ).use {
            it.setString(1, request.holder)
            it.setString(2, store.identity.host)
            it.setLong(3, store.identity.pid)
            it.setDouble(4, leaseNanos / 1e9)
            it.setArray(5, db.createArrayOf("text", request.tags))
            val ids = HashMap<String, Long>()
            it.executeQuery().use { rows -> while (rows.next()) ids[rows.getString(2)] = rows.getLong(1) }
            return LongArray(request.tags.size) { index -> ids.getValue(request.tags[index]) }
        }
    }

    /** Deletes the leases of released grants and announces it; false if the database could not be used. */
    private fun releaseLeases(): Boolean {
        val ids = unreleased.flatMap { it.leaseIds.asList() }.toTypedArray()
        try {
            val db = connection()
            db.prepareStatement("DELETE FROM corobridge_lease WHERE id = ANY(?)").use {
                it.setArray(1, db.createArrayOf("bigint", ids))
                it.executeUpdate()
            }
            store.notifyReleased(db)
            db.commit()
            unreleased.clear()
            return true
        } catch (failure: Throwable) {
            // Not renewed any more, so they expire by themselves if the database stays away; retried meanwhile.
            lost(failure)
            return false
        }
    }

    private fun renew() {
        if (active.isEmpty()) return
        val started = System.nanoTime()
        val ids = active.keys.flatMap { it.leaseIds.asList() }.toTypedArray()
        val renewed = HashSet<Long>()
        try {
            val db = connection()
            db.prepareStatement(
                "UPDATE corobridge_lease SET expires_at = now() + make_interval(secs => ?) " +
                    "WHERE id = ANY(?) AND expires_at > now() RETURNING id"
            ).use {
                it.setDouble(1, leaseNanos / 1e9)
                it.setArray(2, db.createArrayOf("bigint", ids))
                it.executeQuery().use { rows -> while (rows.next()) renewed += rows.getLong(1) }
            }
            db.commit()
        } catch (failure: Throwable) {
            lost(failure)
            // Leases not renewed since longer than their time have run out by the database's clock: lost.
            for ((grant, since) in active.entries.toList()) if (started - since >= leaseNanos) leaseLost(grant, failure)
            return
        }
        for (grant in active.keys.toList()) {
            if (grant.leaseIds.all { it in renewed }) active[grant] = started else leaseLost(grant, null)
        }
    }

    /** Deletes expired leases, every JVM's: housekeeping only, since no count includes them. */
    private fun sweep() {
        try {
            val db = connection()
            db.createStatement().use { it.executeUpdate("DELETE FROM corobridge_lease WHERE expires_at <= now()") }
            db.commit()
        } catch (failure: Throwable) {
            lost(failure)
        }
    }

    private fun leaseLost(grant: Grant, cause: Throwable?) {
        active.remove(grant)
        grant.lost = true
        val why = if (cause == null) "its lease was ended (expired, reset or deleted) before it could be renewed"
        else "its lease ran out while the database could not be reached ($cause)"
        logger.log(System.Logger.Level.ERROR, "corobridge: slots $grant are no longer held: $why")
        grant.job?.cancel(CancellationException("the slots of concurrency limits ${grant.tags} were lost: $why"))
        try {
            settings.onLeaseLost?.invoke(grant)
        } catch (failure: Throwable) {
            logger.log(System.Logger.Level.ERROR, "corobridge: the onLeaseLost handler failed", failure)
        }
    }

    private fun shutDown() {
        for (request in pending) request.future.completeExceptionally(IllegalStateException("the limit store was closed"))
        pending.clear()
        unreleased.addAll(active.keys)
        active.clear()
        if (unreleased.isNotEmpty()) releaseLeases()
        connection?.let { runCatching { it.close() } }
        connection = null
    }

    private fun connection(): Connection =
        connection ?: dataSource.connection.also {
            it.autoCommit = false
            connection = it
        }

    /** The connection failed: forget it (a new one is opened next time) and remember why, for timeouts. */
    private fun lost(failure: Throwable) {
        if (failure is VirtualMachineError) throw failure
        lastFailure = failure as? SQLException ?: SQLException("the store failed: $failure", failure)
        connection?.let { db ->
            runCatching { db.rollback() }
            runCatching { db.close() }
        }
        connection = null
    }

    private fun listen() {
        var db: Connection? = null
        while (!closing) {
            try {
                val open = db ?: dataSource.connection.also {
                    it.autoCommit = true
                    it.createStatement().use { statement -> statement.execute("LISTEN ${PostgresLimitStore.CHANNEL}") }
                    db = it
                    wake() // releases may have been missed while not listening
                }
                val notifications = open.unwrap(PGConnection::class.java).getNotifications(LISTEN_WAIT_MILLIS)
                if (!notifications.isNullOrEmpty()) wake()
            } catch (_: SQLException) {
                db?.let { runCatching { it.close() } }
                db = null
                // The worker's fallback poll covers the gap; try again shortly, not in a tight loop.
                try {
                    Thread.sleep(RECONNECT_MILLIS)
                } catch (_: InterruptedException) {
                    return
                }
            }
        }
        db?.let { runCatching { it.close() } }
    }

    private companion object {
        const val LISTEN_WAIT_MILLIS = 250
        const val RECONNECT_MILLIS = 500L
        val logger: System.Logger = System.getLogger(PostgresLimitStore::class.java.name)
    }
}
