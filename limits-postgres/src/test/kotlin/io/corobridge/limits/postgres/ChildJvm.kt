package io.corobridge.limits.postgres

import java.sql.DriverManager
import java.time.Duration
import io.corobridge.core.limits
import kotlin.concurrent.thread
import kotlin.system.exitProcess

/**
 * A JVM of its own sharing the test's database, started by [MultiProcessTest] as a child process:
 *
 * - `hammer <url> <tags> <iterations>`: 4 threads take the tags `iterations` times each, and while holding them
 *   count themselves in and out of the table `probe` (a measure kept apart from the store: `most` is the largest
 *   number of holders at once, across every JVM). Exits 0 when done.
 * - `hold <url> <tag>`: takes one slot under a 2 s lease, prints `HELD`, and waits to be killed.
 * - `default -`: uses the default loop's limits, which its settings (system properties) keep in a shared store,
 *   and prints how many slots of `db` the store says are held while it holds one.
 */
object ChildJvm {
    @JvmStatic
    fun main(args: Array<String>) {
        val mode = args[0]
        val url = args.getOrElse(1) { "" }
        when (mode) {
            "hammer" -> hammer(url, args[2].split(','), args[3].toInt())
            "hold" -> hold(url, args[2])
            "default" -> defaultLoop()
            else -> error("unknown mode $mode")
        }
    }

    private fun hammer(url: String, tags: List<String>, iterations: Int) {
        val store = PostgresLimitStore.open(url)
        val failures = java.util.concurrent.ConcurrentLinkedQueue<Throwable>()
        val workers = List(4) { n ->
            thread(name = "hammer-$n") {
                DriverManager.getConnection(url).use { probe ->
                    val enter = probe.prepareStatement("UPDATE probe SET inside = inside + 1, most = greatest(most, inside + 1) WHERE id = 1")
                    val leave = probe.prepareStatement("UPDATE probe SET inside = inside - 1 WHERE id = 1")
                    try {
                        repeat(iterations) {
                            store.acquireBlocking(tags, Duration.ofSeconds(60)).use {
                                enter.executeUpdate()
                                leave.executeUpdate()
                            }
                        }
                    } catch (e: Throwable) {
                        failures += e
                    }
                }
            }
        }
        workers.forEach { it.join() }
        store.close()
        failures.forEach { it.printStackTrace() }
        exitProcess(if (failures.isEmpty()) 0 else 1)
    }

    private fun hold(url: String, tag: String) {
        val store = PostgresLimitStore.open(url, PostgresLimitStore.Settings(leaseTime = Duration.ofSeconds(2)))
        store.acquireBlocking(listOf(tag), Duration.ofSeconds(30))
        println("HELD")
        System.out.flush()
        java.util.concurrent.CountDownLatch(1).await() // nothing opens it: the process waits until it is killed
    }

    private fun defaultLoop() {
        val loop = io.corobridge.core.RunSyncLoop.default
        // On the loop thread, the loop's own statistics (no round trip); the store's, from this thread.
        val heldHere = loop.runSync { io.corobridge.core.withConcurrencyLimit("db") { loop.stats().limits.single().occupied } }
        val shared = loop.limits.stats().single { it.tag == "db" }
        println("db ${shared.slots} slots, $heldHere held")
        System.out.flush()
    }
}
