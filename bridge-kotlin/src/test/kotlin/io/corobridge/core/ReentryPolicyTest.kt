package io.corobridge.core

import java.util.logging.Level
import kotlinx.coroutines.launch
import kotlinx.coroutines.yield
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertNotEquals
import org.junit.jupiter.api.Assertions.assertThrows
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.extension.RegisterExtension

class ReentryPolicyTest {
    @JvmField
    @RegisterExtension
    val loops = TestLoops()
    private val loop = loops.create("reentry")

    @Test
    fun `close called in a re-entrant call returns at once instead of waiting for the loop thread that waits for it`() {
        val closing = RunSyncLoop.create("reentry-close")
        closing.closing.closeGraceNanos = java.util.concurrent.TimeUnit.SECONDS.toNanos(30) // a wait would fail the test
        LogCapture().use { log ->
            val outer = assertThrows(java.util.concurrent.CancellationException::class.java) {
                closing.runSync { closing.runSync { closing.close() } }
            }
            assertTrue(outer.message!!.contains("closed"), outer.message)
            assertTrue(log.messages(Level.WARNING).none { it.contains("could not finish closing") })
        }
        awaitState("the loop thread ends") { liveThreads("corobridge-loop-reentry-close").isEmpty() }
    }

    @Test
    fun `a blocking call into a closing loop from its own shutdown callback is refused, not run on a new thread`() {
        for (policy in ReentryPolicy.values()) {
            val closing = RunSyncLoop.create("reentry-closing")
            closing.reentryPolicy = policy
            val reported = java.util.concurrent.LinkedBlockingQueue<Throwable>()
            closing.failureHandler = Thread.UncaughtExceptionHandler { _, e -> reported.add(e) }
            val ran = java.util.concurrent.atomic.AtomicBoolean()
            closing.onShutdown { closing.runSync { ran.set(true) } }
            closing.close()
            val failure = reported.poll(10, java.util.concurrent.TimeUnit.SECONDS)
            assertTrue(failure is IllegalStateException && failure.message!!.contains("is closed"), "$policy: $failure")
            assertTrue(!ran.get(), "$policy: the call ran")
            assertNoThreads("corobridge-loop-reentry-closing")
        }
    }

    @Test
    fun `NEW_THREAD runs re-entrant calls on new threads, three levels deep, without deadlock`() {
        LogCapture().use {
            val threads = loop.runSync {
                val level1 = Thread.currentThread().name
                val (level2, level3) = loop.runSync {
                    yield()
                    val level2 = Thread.currentThread().name
                    val level3 = loop.runSync { yield(); Thread.currentThread().name }
                    level2 to level3
                }
                listOf(level1, level2, level3)
            }
            assertEquals("corobridge-loop-reentry", threads[0])
            assertTrue(threads[1].startsWith("corobridge-loop-reentry-reentry-"), threads[1])
            assertTrue(threads[2].startsWith("corobridge-loop-reentry-reentry-"), threads[2])
            assertEquals(3, threads.toSet().size, "each level ran on its own thread: $threads")
        }
    }

    @Test
    fun `NEW_THREAD warns once per call site, naming the site and the alternative`() {
        LogCapture().use { logs ->
            repeat(3) { loop.runSync { reenterHere() } }
            val warnings = logs.messages(Level.WARNING).filter { it.contains("reenterHere") }
            assertEquals(1, warnings.size, "once per call site: $warnings")
            val warning = warnings.single()
            assertTrue(warning.contains("ReentryPolicyTest.kt"), warning)
            assertTrue(warning.contains("call the suspend function directly"), warning)
            assertTrue(warning.contains("corobridge-loop-reentry"), warning)
        }
    }

    private fun reenterHere(): Int = loop.runSync { 1 }

    @Test
    fun `FAIL refuses a re-entrant call with an explanation, and the error reaches the outer caller`() {
        loop.reentryPolicy = ReentryPolicy.FAIL
        val thrown = assertThrows(IllegalStateException::class.java) {
            loop.runSync<Int> { loop.runSync { 1 } }
        }
        assertTrue(thrown.message!!.contains("would deadlock"), thrown.message)
        assertTrue(thrown.message!!.contains("ReentryPolicyTest"), "names the call site: ${thrown.message}")
        assertEquals(2, loop.runSync { 2 }, "the loop still serves")
    }

    @Test
    fun `FAIL applies at the third level too, behind a NEW_THREAD level`() {
        val strict = RunSyncLoop.create("reentry-strict")
        strict.reentryPolicy = ReentryPolicy.FAIL
        try {
            LogCapture().use {
                // level 1: on this loop; level 2: re-entry, on a new thread (NEW_THREAD); level 3: from that
                // new loop thread into the strict loop, which refuses.
                val thrown = assertThrows(IllegalStateException::class.java) {
                    loop.runSync<Int> { loop.runSync { strict.runSync { 3 } } }
                }
                assertTrue(thrown.message!!.contains("\"reentry-strict\""), thrown.message)
                assertTrue(thrown.message!!.contains("corobridge-loop-reentry-reentry-"), thrown.message)
            }
        } finally {
            strict.close()
        }
    }

    @Test
    fun `a coroutine launched on the loop is re-entrant too`() {
        LogCapture().use {
            val result = kotlinx.coroutines.CompletableDeferred<String>()
            loop.scope.launch { result.complete(loop.runSync { Thread.currentThread().name }) }
            val name = loop.runSync { result.await() }
            assertNotEquals("corobridge-loop-reentry", name)
        }
    }

    @Test
    fun `a call from another loop's thread is re-entry as well`() {
        val other = RunSyncLoop.create("reentry-other")
        try {
            LogCapture().use {
                val name = other.runSync { loop.runSync { Thread.currentThread().name } }
                assertTrue(name.startsWith("corobridge-loop-reentry-reentry-"), name)
            }
        } finally {
            other.close()
        }
    }
}
