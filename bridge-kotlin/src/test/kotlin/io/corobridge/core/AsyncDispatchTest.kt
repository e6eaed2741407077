package io.corobridge.core

import java.io.IOException
import java.util.concurrent.CompletableFuture
import java.util.logging.Level
import kotlin.concurrent.thread
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.asCoroutineDispatcher
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withContext
import kotlinx.coroutines.yield
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertSame
import org.junit.jupiter.api.Assertions.assertThrows
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.extension.RegisterExtension

/** A library class offering a suspend `aload` and its blocking twin `load`, built on asyncDispatch. */
class DualStore(private val loop: RunSyncLoop, private val withSyncImplementation: Boolean) {
    /** Which implementation ran last, and on which thread. */
    @Volatile
    var lastRun: String = ""

    suspend fun aload(id: Int): String {
        yield() // really suspends, so it needs a running loop
        lastRun = "async on ${Thread.currentThread().name}"
        return "user-$id"
    }

    private fun loadBlocking(id: Int): String {
        lastRun = "sync on ${Thread.currentThread().name}"
        return "user-$id"
    }

    fun load(id: Int, dispatch: Dispatch = Dispatch.AUTO): String =
        loop.asyncDispatch(
            "DualStore.aload",
            dispatch,
            sync = if (withSyncImplementation) ({ loadBlocking(id) }) else null,
        ) { aload(id) }

    suspend fun afail(): String {
        yield()
        throw IOException("disk gone")
    }

    fun fail(): String = loop.asyncDispatch("DualStore.afail") { afail() }
}

class AsyncDispatchTest {
    @JvmField
    @RegisterExtension
    val loops = TestLoops()
    private val loop = loops.create("dual")
    private val dual = DualStore(loop, withSyncImplementation = true)
    private val asyncOnly = DualStore(loop, withSyncImplementation = false)

    private fun dispatchLogs() = LogCapture("io.corobridge.core.AsyncDispatch")

    private fun LogCapture.warnings(): List<String> = messages(Level.WARNING)

    @Test
    fun `a plain thread runs the suspend implementation on the loop, silently`() {
        dispatchLogs().use { logs ->
            assertEquals("user-1", dual.load(1))
            assertEquals("async on corobridge-loop-dual", dual.lastRun)
            assertEquals(emptyList<String>(), logs.warnings())
        }
    }

    @Test
    fun `a worker thread hops to the loop, silently, even with a worker limit of 1`() {
        loop.workerLimit = 1
        dispatchLogs().use { logs ->
            val result = loop.runSync { runInWorkerThread { dual.load(2) to dual.lastRun } }
            assertEquals("user-2" to "async on corobridge-loop-dual", result)
            assertEquals(emptyList<String>(), logs.warnings())
        }
    }

    @Test
    fun `on the loop thread the blocking twin runs, with one warning per call site naming the site and the twin`() {
        dispatchLogs().use { logs ->
            repeat(3) {
                assertEquals("user-3", loop.runSync { dual.load(3) })
                assertEquals("sync on corobridge-loop-dual", dual.lastRun)
            }
            assertEquals(1, logs.warnings().size, "once for the call site: ${logs.warnings()}")
            val warning = logs.warnings().single()
            assertTrue(warning.contains("DualStore.load was called on loop thread \"corobridge-loop-dual\""), warning)
            assertTrue(warning.contains("AsyncDispatchTest.kt"), "names the caller's line: $warning")
            assertTrue(warning.contains("call the suspend twin DualStore.aload", ignoreCase = true), warning)
            assertTrue(warning.contains("Dispatch.SYNC"), warning)
            loop.runSync { dual.load(3) } // a second call site
            assertEquals(2, logs.warnings().size, "another call site warns once more: ${logs.warnings()}")
        }
    }

    @Test
    fun `on the loop thread without a blocking twin it runs on a new thread instead of deadlocking, warning once`() {
        LogCapture().use { loopLogs ->
            dispatchLogs().use { logs ->
                repeat(2) {
                    assertEquals("user-4", loop.runSync { asyncOnly.load(4) })
                    assertTrue(asyncOnly.lastRun.startsWith("async on corobridge-loop-dual-reentry-"), asyncOnly.lastRun)
                }
                assertEquals(1, logs.warnings().size, "${logs.warnings()}")
                assertTrue(logs.warnings().single().contains("new thread"), logs.warnings().single())
            }
            assertEquals(emptyList<String>(), loopLogs.messages(Level.WARNING), "no second warning from the re-entry")
        }
    }

    @Test
    fun `on the loop thread without a blocking twin and re-entry policy FAIL it refuses, without a warning`() {
        loop.reentryPolicy = ReentryPolicy.FAIL
        dispatchLogs().use { logs ->
            val thrown = assertThrows(IllegalStateException::class.java) { loop.runSync { asyncOnly.load(5) } }
            assertTrue(thrown.message!!.contains("would deadlock"), thrown.message)
            assertEquals(emptyList<String>(), logs.warnings())
        }
    }

    @Test
    fun `inside a coroutine on another dispatcher it warns and runs the blocking twin there`() {
        dispatchLogs().use { logs ->
            val (result, thread) = runBlocking(Dispatchers.Default) { dual.load(6) to Thread.currentThread().name }
            assertEquals("user-6", result)
            assertEquals("sync on $thread", dual.lastRun)
            val warning = logs.warnings().single()
            assertTrue(warning.contains("inside a coroutine on thread \"$thread\""), warning)
        }
    }

    @Test
    fun `inside runBlocking without a blocking twin it warns and runs the suspend one on the loop`() {
        dispatchLogs().use { logs ->
            assertEquals("user-7", runBlocking { asyncOnly.load(7) })
            assertEquals("async on corobridge-loop-dual", asyncOnly.lastRun)
            val warning = logs.warnings().single()
            assertTrue(warning.contains("inside a coroutine"), warning)
            assertTrue(warning.contains("while the coroutine's thread blocked"), warning)
        }
    }

    @Test
    fun `Dispatch SYNC and ASYNC choose explicitly everywhere and never warn`() {
        LogCapture().use {
            dispatchLogs().use { logs ->
                assertEquals("user-8", dual.load(8, Dispatch.SYNC))
                assertEquals("sync on ${Thread.currentThread().name}", dual.lastRun, "SYNC on a plain thread")
                assertEquals("user-8", asyncOnly.load(8, Dispatch.SYNC))
                assertEquals("async on corobridge-loop-dual", asyncOnly.lastRun, "SYNC without a blocking twin")
                loop.runSync { dual.load(8, Dispatch.ASYNC) }
                assertTrue(dual.lastRun.startsWith("async on corobridge-loop-dual-reentry-"), "ASYNC on the loop")
                loop.runSync { dual.load(8, Dispatch.SYNC) }
                assertEquals("sync on corobridge-loop-dual", dual.lastRun, "SYNC on the loop")
                runBlocking(Dispatchers.Default) { dual.load(8, Dispatch.ASYNC) }
                assertEquals("async on corobridge-loop-dual", dual.lastRun, "ASYNC in a coroutine")
                assertEquals(emptyList<String>(), logs.warnings())
            }
        }
    }

    @Test
    fun `what the implementation throws reaches the caller unchanged`() {
        val thrown = assertThrows(IOException::class.java) { asyncOnly.fail() }
        assertEquals("disk gone", thrown.message)
    }

    @Test
    fun `the top-level form runs on the loop of the worker it is called from`() {
        val seen = loop.runSync {
            runInWorkerThread { asyncDispatch("probe") { Thread.currentThread().name } }
        }
        assertEquals("corobridge-loop-dual", seen)
    }

    @Test
    fun `a blank twin name is refused at the boundary`() {
        val thrown = assertThrows(IllegalArgumentException::class.java) { loop.asyncDispatch<Int>(" ") { 1 } }
        assertTrue(thrown.message!!.contains("twin"), thrown.message)
    }

    @Test
    fun `isInCoroutine tells coroutines from plain and worker threads`() {
        assertFalse(RunContext.isInCoroutine, "a test thread")
        val plain = CompletableFuture<Boolean>()
        thread { plain.complete(RunContext.isInCoroutine) }.join()
        assertFalse(plain.get(), "a new plain thread")
        assertTrue(runBlocking { RunContext.isInCoroutine }, "runBlocking")
        assertTrue(runBlocking(Dispatchers.Default) { RunContext.isInCoroutine }, "Dispatchers.Default")
        assertTrue(runBlocking { withContext(Dispatchers.IO) { RunContext.isInCoroutine } }, "withContext(IO)")
        assertTrue(loop.runSync { RunContext.isInCoroutine }, "the loop")
        assertFalse(loop.runSync { runInWorkerThread { RunContext.isInCoroutine } }, "a worker's blocking code")
        assertTrue(
            loop.runSync { runInWorkerThread { runBlocking { RunContext.isInCoroutine } } },
            "runBlocking inside a worker's blocking code",
        )
        assertFalse(RunContext.isInCoroutine, "the test thread once runBlocking has returned")
        val pool = java.util.concurrent.Executors.newSingleThreadExecutor()
        try {
            val custom = runBlocking(pool.asCoroutineDispatcher()) {
                RunContext.isInCoroutine
            }
            assertFalse(custom, "a dispatcher over an executor of one's own is not recognised (documented)")
        } finally {
            pool.shutdown()
            assertTrue(pool.awaitTermination(10, java.util.concurrent.TimeUnit.SECONDS))
        }
    }

    @Test
    fun `the thrown exception is the very instance thrown by the blocking twin`() {
        val failure = IllegalStateException("sync failed")
        val thrown = assertThrows(IllegalStateException::class.java) {
            loop.asyncDispatch<Int>("x", Dispatch.SYNC, sync = { throw failure }) { 1 }
        }
        assertSame(failure, thrown)
    }
}
