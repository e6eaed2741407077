package io.corobridge.benchmarks.http

import io.ktor.client.HttpClient
import io.ktor.client.engine.cio.CIO
import io.ktor.client.request.get
import io.ktor.client.statement.bodyAsText
import java.util.concurrent.CompletableFuture
import java.util.concurrent.Executors
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.SupervisorJob
import kotlinx.coroutines.asCoroutineDispatcher
import kotlinx.coroutines.async
import kotlinx.coroutines.awaitAll
import kotlinx.coroutines.cancel
import kotlinx.coroutines.future.future
import kotlinx.coroutines.runBlocking

/**
 * One Ktor client (CIO engine), shared by every caller as an application would share it, and the ways a
 * Kotlin team calls it from blocking code without corobridge: a `runBlocking {}` helper, and `future {}` on
 * `Dispatchers.IO`. The corobridge ways call [fetch] through the Java face (see HttpBenchmark).
 */
class HttpCalls(private val base: String) : AutoCloseable {
    private val client = HttpClient(CIO) {
        engine {
            // Enough connections for every caller's requests at once (64 callers x 8 in a gather), so that no way
            // waits for a connection of the pool rather than for the server.
            maxConnectionsCount = 4096
            endpoint.maxConnectionsPerRoute = 4096
        }
    }
    private val ioScope = CoroutineScope(SupervisorJob() + Dispatchers.IO)

    /**
     * The design of corobridge's default written by hand: one thread runs every caller's coroutine and each
     * caller waits for a future. What it costs against the `runBlocking` helper is the cost of the one extra hop
     * (I/O thread to that thread to the caller) that running every call on one shared thread requires.
     */
    private val oneThread = Executors.newSingleThreadExecutor { Thread(it, "one-thread") }
    private val oneThreadScope = CoroutineScope(SupervisorJob() + oneThread.asCoroutineDispatcher())

    /** One request to [path] (`now` or `delay?ms=N`); returns the body's length. */
    suspend fun fetch(path: String): Int = client.get("$base/$path").bodyAsText().length

    /** [n] requests at once, as `coroutineScope { async { } }.awaitAll()` would run them; returns the bodies' lengths. */
    suspend fun fetchAll(path: String, n: Int): List<Int> = kotlinx.coroutines.coroutineScope {
        (0 until n).map { async { fetch(path) } }.awaitAll()
    }

    /** The helper most teams write: `runBlocking { fetch() }`. */
    fun runBlockingFetch(path: String): Int = runBlocking { fetch(path) }

    /** `future {}` on `Dispatchers.IO`, joined. */
    fun futureOnIo(path: String): CompletableFuture<Int> = ioScope.future { fetch(path) }

    /** `future {}` on one shared thread, joined: the default's design without corobridge. */
    fun futureOnOneThread(path: String): CompletableFuture<Int> = oneThreadScope.future { fetch(path) }

    fun runBlockingFetchAll(path: String, n: Int): List<Int> = runBlocking { fetchAll(path, n) }

    fun futureOnIoAll(path: String, n: Int): CompletableFuture<List<Int>> = ioScope.future { fetchAll(path, n) }

    override fun close() {
        ioScope.cancel()
        oneThreadScope.cancel()
        oneThread.shutdown()
        client.close()
    }
}
