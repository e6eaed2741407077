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
 * state (requests not yet sent, requests queued in the database, grants held); other threads reach it only through
 * its command queue, so none of that state needs a lock. The listener holds a second connection that LISTENs on
 * the store's channel: a NOTIFY 'grant <store> <request> <leases>' or 'fail <store> <request> <why> <n>' for this
 * store becomes a command for the worker; any other wakes it to poll.
 *
 * The queue lives in the database (schema-3.sql): a request that cannot be granted at once waits there, in a row of
 * corobridge_waiter for this store and its tags, and the call that frees a slot grants it to the oldest request
 * queued that fits, in the same statement, and notifies that request's store. So requests are served in arrival
 * order across every JVM, and only the store whose request got the slot is woken.
 *
 * One round of the worker: take the commands queued; fail requests past their deadline; in one call of
 * corobridge_take, give back released leases, withdraw requests that gave up (both serve the queue) and send the
 * new requests (granted at once, or queued); poll the queued ones when a NOTIFY may have been missed (a wake-up,
 * or every poll interval); renew leases and queue rows when a third of the lease time has passed. Every operation is
 * one statement in autocommit: no transaction is ever left open, and no lock outlives a statement.
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

        /** Its number in this store's queue rows and NOTIFY payloads. */
        val id: Long = ids.incrementAndGet()

        /** What the last attempt saw of the first tag that had no free slot: tag, held, slots. */
        var lastSeen: Triple<String, Int, Int>? = null
    }

    private class Abandon(val request: Request)
    private class Release(val grant: Grant)
    private class Granted(val request: Long, val leases: LongArray)
    private class Refused(val request: Long, val why: String, val tagIndex: Int)
    private object Wake
    private object Close
    private object Halt

    /** This store in NOTIFY payloads: unique among every store sharing the database. */
    val id: String = java.util.UUID.randomUUID().toString()

    private val commands = LinkedBlockingQueue<Any>()
    private val fresh = ArrayDeque<Request>() // not sent yet
    private val queued = LinkedHashMap<Long, Request>() // waiting in the database's queue, by request id
    private val active = LinkedHashMap<Grant, Long>() // grant -> System.nanoTime() before its last good renewal
    private val unreleased = ArrayList<Grant>()
    private val withdrawals = LinkedHashMap<Long, Array<String>>() // request id -> its tags
    private var connection: Connection? = null
    private var lastFailure: SQLException? = null
    private var nextPoll = 0L

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
        if (queued.isNotEmpty() || fresh.isNotEmpty() || unreleased.isNotEmpty() || withdrawals.isNotEmpty()) {
            wait = minOf(wait, nextPoll - now)
            (fresh.asSequence() + queued.values.asSequence()).mapNotNull { it.deadlineNanos }.minOrNull()
                ?.let { wait = minOf(wait, it - now) }
        }
        var command: Any? = commands.poll(maxOf(wait, 0L), TimeUnit.NANOSECONDS)
        var poll = command == null && System.nanoTime() - nextPoll >= 0 // the fallback poll
        var close = false
        while (command != null) {
            when (command) {
                is Request -> fresh.addLast(command)
                is Abandon -> abandoned(command.request)
                is Release -> unreleased.add(command.grant).also { active.remove(command.grant) }
                is Granted -> queued.remove(command.request)?.let { granted(it, command.leases) }
                is Refused -> queued.remove(command.request)?.let { refused(it, command.why, it.tags.getOrNull(command.tagIndex - 1)) }
                Wake -> poll = true
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
        failExpired()
        if (fresh.isNotEmpty() || unreleased.isNotEmpty() || withdrawals.isNotEmpty()) take()
        if (poll && queued.isNotEmpty()) poll()
        if (System.nanoTime() - nextPoll >= 0) nextPoll = System.nanoTime() + pollNanos
        waiting = fresh.size + queued.size
        return true
    }

    /** A caller stopped waiting (cancelled, interrupted): forget its request, give back a grant it never took. */
    private fun abandoned(request: Request) {
        fresh.remove(request)
        if (queued.remove(request.id) != null) withdrawals[request.id] = request.tags
        val future = request.future
        if (future.isDone && !future.isCancelled && !future.isCompletedExceptionally) future.getNow(null)?.close()
    }

    private fun failExpired() {
        val now = System.nanoTime()
        fresh.removeAll { request -> expired(request, now) }
        val gone = queued.entries.filter { (_, request) -> expired(request, now) }
        for ((id, request) in gone) {
            queued.remove(id)
            withdrawals[id] = request.tags
        }
    }

    /** True if [request] is done or past its deadline (then failed here). */
    private fun expired(request: Request, now: Long): Boolean {
        if (request.future.isDone) return true
        val deadline = request.deadlineNanos ?: return false
        if (now - deadline < 0) return false
        request.future.completeExceptionally(timedOut(request))
        return true
    }

    private fun timedOut(request: Request): Throwable {
        val waited = java.time.Duration.ofNanos(System.nanoTime() - request.startNanos)
        val seen = request.lastSeen
        val waiting = (fresh.asSequence() + queued.values.asSequence()).count { other -> other !== request && other.tags.any { it == seen?.first } }
        val message = if (seen != null && lastFailure == null) {
            "no slot of concurrency limit \"${seen.first}\" came free in the shared store within $waited (held " +
                "${seen.second} / slots ${seen.third} across every JVM when it queued, $waiting more waiting here); slots " +
                "already taken for this call were given back"
        } else {
            "no slot of concurrency limits ${request.tags.joinToString { "\"$it\"" }} came free in the shared store " +
                "within $waited" + (lastFailure?.let { "; the database could not be used: $it" } ?: "")
        }
        return io.corobridge.core.ConcurrencyLimitTimeoutException(
            message, seen?.first ?: request.tags.first(), seen?.second ?: -1, seen?.third ?: -1, waiting,
        ).also { error -> lastFailure?.let { error.initCause(it) } }
    }

    /** A queued request was granted [leases] (in the order of its tags): it holds them from now on. */
    private fun granted(request: Request, leases: LongArray) {
        val grant = Grant(store, request.tags.asList(), leases, request.job)
        active[grant] = System.nanoTime() - leaseNanos / 10 // a margin for the statement that set the expiry
        if (!request.future.complete(grant)) grant.close() // the caller gave up meanwhile
    }

    private fun refused(request: Request, why: String, tag: String?) {
        val error = if (why == "off") {
            IllegalStateException("concurrency limit \"$tag\" has 0 slots: it is switched off, so nothing may run under it")
        } else {
            IllegalArgumentException("unknown concurrency limit \"${tag?.take(80)}\" in the shared store (deleted while this waited)")
        }
        request.future.completeExceptionally(error)
    }

    /**
     * One call: gives back the leases released, which serves the queue, then sends the new requests: each is granted
     * at once, queued in the database, or refused.
     */
    private fun take() {
        val requests = fresh.toList()
        val releasing = unreleased.toList()
        val withdrawing = LinkedHashMap(withdrawals)
        val requestOf = ArrayList<Long>()
        val tagOf = ArrayList<String>()
        val holderOf = ArrayList<String>()
        for (request in requests) {
            for (tag in request.tags) {
                requestOf += request.id
                tagOf += tag
                holderOf += request.holder
            }
        }
        val byId = requests.associateBy { it.id }
        val leases = HashMap<Long, HashMap<String, Long>>()
        val answered = HashSet<Long>()
        val queuedHere = HashSet<Long>()
        val refusedHere = ArrayList<Pair<Request, Throwable>>()
        var unknown = false
        try {
            val db = connection()
            db.prepareStatement("SELECT * FROM corobridge_take(?, ?, false, ?, ?, ?, ?, ?, ?, ?, ?)").use {
                it.setArray(1, db.createArrayOf("text", withdrawing.values.flatMap { tags -> tags.asList() }.distinct().toTypedArray()))
                it.setArray(2, db.createArrayOf("bigint", releasing.flatMap { grant -> grant.leaseIds.asList() }.toTypedArray()))
                it.setString(3, id)
                it.setArray(4, db.createArrayOf("bigint", requestOf.toTypedArray()))
                it.setArray(5, db.createArrayOf("text", tagOf.toTypedArray()))
                it.setArray(6, db.createArrayOf("text", holderOf.toTypedArray()))
                it.setString(7, store.identity.host)
                it.setLong(8, store.identity.pid)
                it.setDouble(9, leaseNanos / 1e9)
                it.setArray(10, db.createArrayOf("bigint", withdrawing.keys.toTypedArray()))
                it.executeQuery().use { rows ->
                    while (rows.next()) {
                        val request = byId.getValue(rows.getLong(1))
                        val tag = rows.getString(3)
                        answered += request.id
                        when (rows.getString(2)) {
                            "granted" -> leases.getOrPut(request.id) { HashMap() }[tag] = rows.getLong(6)
                            "queued" -> {
                                request.lastSeen = Triple(tag, rows.getInt(4), rows.getInt(5))
                                queuedHere += request.id
                            }
                            "unknown" -> {
                                unknown = true
                                refusedHere += request to IllegalArgumentException("unknown concurrency limit \"${tag.take(80)}\" in the shared store")
                            }
                            "off" -> refusedHere += request to IllegalStateException(
                                "concurrency limit \"$tag\" has 0 slots: it is switched off, so nothing may run under it"
                            )
                        }
                    }
                }
            }
            if (unknown) {
                val known = knownTags(db)
                refusedHere.replaceAll { (request, error) ->
                    request to if (error is IllegalArgumentException) IllegalArgumentException("${error.message}; known tags: $known") else error
                }
            }
            lastFailure = null
        } catch (failure: Throwable) {
            // Nothing was given back, granted or queued (the call is one statement): all of it is tried again.
            // Leases not given back are not renewed either, so they expire by themselves if the database stays away.
            lost(failure)
            return
        }
        fresh.clear()
        unreleased.removeAll(releasing.toSet())
        withdrawing.keys.forEach { withdrawals.remove(it) }
        check(answered.size == requests.size) { "corobridge_take answered ${answered.size} of ${requests.size} requests" }
        for ((request, error) in refusedHere) request.future.completeExceptionally(error)
        for (request in requests) {
            val mine = leases[request.id]
            if (mine != null) {
                granted(request, LongArray(request.tags.size) { mine.getValue(request.tags[it]) })
            } else if (request.id in queuedHere) {
                if (request.future.isDone) withdrawals[request.id] = request.tags else queued[request.id] = request
            }
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

    /**
     * The fallback for a NOTIFY missed (the listener reconnecting, or a lease that expired unreleased, which nobody
     * announces): serves the queue of this store's requests, then learns what became of each.
     */
    private fun poll() {
        val waiting = queued.keys.toTypedArray()
        val grantedHere = HashMap<Long, HashMap<String, Long>>()
        val gone = ArrayList<Long>()
        try {
            val db = connection()
            db.prepareStatement("SELECT * FROM corobridge_poll(?, ?)").use {
                it.setString(1, id)
                it.setArray(2, db.createArrayOf("bigint", waiting))
                it.executeQuery().use { rows ->
                    while (rows.next()) {
                        val request = rows.getLong(1)
                        when (rows.getString(2)) {
                            "granted" -> grantedHere.getOrPut(request) { HashMap() }[rows.getString(3)] = rows.getLong(4)
                            "gone" -> gone += request
                        }
                    }
                }
            }
            lastFailure = null
        } catch (failure: Throwable) {
            lost(failure)
            return
        }
        for ((id, leases) in grantedHere) {
            val request = queued.remove(id) ?: continue
            granted(request, LongArray(request.tags.size) { leases.getValue(request.tags[it]) })
        }
        for (id in gone) {
            // Its queue row's lease ran out (the database was away longer than the lease), or it was refused and
            // the NOTIFY missed: send it again, at the back of the queue; a refusal then comes back as an answer.
            val request = queued.remove(id) ?: continue
            fresh.addLast(request)
        }
        if (fresh.isNotEmpty()) take()
    }

    /** At close: this store's queue rows go (its requests were withdrawn by the last take()). */
    private fun leave() {
        try {
            val db = connection()
            db.prepareStatement("DELETE FROM corobridge_waiter WHERE store = ?").use {
                it.setString(1, id)
                it.executeUpdate()
            }
        } catch (failure: Throwable) {
            // The rows' lease runs out by itself if the database is away.
            lost(failure)
        }
    }

    /** Renews the leases of the grants held and of this store's queue rows (a request whose row ran out is polled as gone). */
    private fun renew() {
        if (active.isEmpty() && queued.isEmpty()) return
        val started = System.nanoTime()
        val ids = active.keys.flatMap { it.leaseIds.asList() }.toTypedArray()
        val renewed = HashSet<Long>()
        try {
            val db = connection()
            db.prepareStatement(
                "WITH waiting AS (UPDATE corobridge_waiter SET expires_at = now() + make_interval(secs => ?) " +
                    "WHERE store = ? AND expires_at > now()) " +
                    "UPDATE corobridge_lease SET expires_at = now() + make_interval(secs => ?) " +
                    "WHERE id = ANY(?) AND expires_at > now() RETURNING id"
            ).use {
                it.setDouble(1, leaseNanos / 1e9)
                it.setString(2, id)
                it.setDouble(3, leaseNanos / 1e9)
                it.setArray(4, db.createArrayOf("bigint", ids))
                it.executeQuery().use { rows -> while (rows.next()) renewed += rows.getLong(1) }
            }
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

    /**
     * Deletes expired leases and queue rows, every JVM's, and serves the queue of the leases' tags: a holder that
     * died announced nothing, so this hands its slots on (as does a grant that finds a tag full, and every poll).
     */
    private fun sweep() {
        try {
            val db = connection()
            db.createStatement().use { it.executeQuery("SELECT corobridge_sweep()").close() }
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
        // The handler first: whoever waits for the holder to end then finds it told.
        try {
            settings.onLeaseLost?.invoke(grant)
        } catch (failure: Throwable) {
            logger.log(System.Logger.Level.ERROR, "corobridge: the onLeaseLost handler failed", failure)
        }
        grant.job?.cancel(CancellationException("the slots of concurrency limits ${grant.tags} were lost: $why"))
    }

    private fun shutDown() {
        for (request in fresh + queued.values) request.future.completeExceptionally(IllegalStateException("the limit store was closed"))
        fresh.clear()
        for ((requestId, request) in queued) withdrawals[requestId] = request.tags
        queued.clear()
        unreleased.addAll(active.keys)
        active.clear()
        if (unreleased.isNotEmpty() || withdrawals.isNotEmpty()) take()
        leave()
        connection?.let { runCatching { it.close() } }
        connection = null
    }

    private fun connection(): Connection =
        connection ?: dataSource.connection.also {
            it.autoCommit = true // every operation of the worker is one statement, its own transaction
            connection = it
        }

    /** The connection failed: forget it (a new one is opened next time) and remember why, for timeouts. */
    private fun lost(failure: Throwable) {
        if (failure is VirtualMachineError) throw failure
        lastFailure = failure as? SQLException ?: SQLException("the store failed: $failure", failure)
        connection?.let { db -> runCatching { db.close() } }
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
                for (notification in notifications.orEmpty()) heard(notification.parameter)
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

    /** A NOTIFY on the channel: a grant or refusal for a request of this store, one for another store, or a wake-up. */
    private fun heard(payload: String) {
        val parts = payload.split(' ')
        when {
            parts.size == 4 && parts[0] == "grant" -> if (parts[1] == id) {
                commands.add(Granted(parts[2].toLong(), parts[3].split(',').map { it.toLong() }.toLongArray()))
            }
            parts.size == 5 && parts[0] == "fail" -> if (parts[1] == id) {
                commands.add(Refused(parts[2].toLong(), parts[3], parts[4].toInt()))
            }
            else -> wake() // from an older version of this store, or an operator: poll
        }
    }

    private companion object {
        /** Request numbers, unique in this JVM (a store's are unique in it, which is all the queue needs). */
        val ids = java.util.concurrent.atomic.AtomicLong()
        const val LISTEN_WAIT_MILLIS = 250
        const val RECONNECT_MILLIS = 500L
        val logger: System.Logger = System.getLogger(PostgresLimitStore::class.java.name)
    }
}
