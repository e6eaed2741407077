package io.corobridge.benchmarks.http

import io.ktor.server.application.call
import io.ktor.server.cio.CIO
import io.ktor.server.engine.embeddedServer
import io.ktor.server.response.respondText
import io.ktor.server.routing.get
import io.ktor.server.routing.routing
import kotlinx.coroutines.delay
import kotlinx.coroutines.runBlocking

/**
 * The server the real-I/O benchmark calls, run in a child JVM so that its CPU is not counted as the client's.
 * `GET /now` answers "ok" at once; `GET /delay?ms=N` answers after N milliseconds without holding a thread.
 *
 * Prints `port <n>` once it listens on 127.0.0.1 and stops when its standard input ends, so it never outlives
 * the benchmark that started it, even one that was killed.
 */
object HttpServerMain {
    @JvmStatic
    fun main(args: Array<String>) {
        val server = embeddedServer(CIO, host = "127.0.0.1", port = 0) {
            routing {
                get("/now") { call.respondText("ok") }
                get("/delay") {
                    delay(call.request.queryParameters["ms"]?.toLong() ?: 10L)
                    call.respondText("ok")
                }
            }
        }
        server.start(wait = false)
        val port = runBlocking { server.engine.resolvedConnectors().first().port }
        println("port $port")
        System.out.flush()
        while (System.`in`.read() >= 0) {
            // Nothing to read; waiting for the parent to close the pipe (or die).
        }
        server.stop(0, 1000)
    }
}
