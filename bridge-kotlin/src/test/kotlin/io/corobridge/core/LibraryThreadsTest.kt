package io.corobridge.core

import java.time.Duration
import java.util.concurrent.CountDownLatch
import java.util.concurrent.TimeUnit
import java.util.concurrent.atomic.AtomicReference
import java.util.logging.Level
import kotlinx.coroutines.launch
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertNotSame
import org.junit.jupiter.api.Assertions.assertSame
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.extension.RegisterExtension

/**
 * The threads corobridge owns (loop, workers, watchdog) inherit nothing from the thread that made them, and
 * survive stray interrupts: only closing the loop ends them.
 */
class LibraryThreadsTest {
    @JvmField
    @RegisterExtension
    val loops = TestLoops()

    @Test
    fun `an interrupt a task leaves on the loop thread does not reach the next task`() {
        RunSyncLoop.create("threads-interrupt").use { loop ->
            repeatRounds(20) {
                val seenByNext = AtomicReference<Boolean>()
                val next = CountDownLatch(1)
                loop.runSync {
                    // Queued behind this task, so the loop runs it next without going idle in between.
                    loop.scope.launch {
                        seenByNext.set(Thread.currentThread().isInterrupted)
                        next.countDown()
                    }
                    Thread.currentThread().interrupt()
                }
                assertTrue(next.await(10, TimeUnit.SECONDS))
                assertEquals(false, seenByNext.get(), "the next task started with the interrupt flag clear")
                // And an interruptible wait in the next call body is not cut short by it: an open latch's
                // await() returns at once, unless the flag is set, when it throws InterruptedException.
                loop.runSync { Thread.currentThread().interrupt() }
                assertEquals("waited", loop.runSync { CountDownLatch(0).await(); "waited" })
            }
        }
    }

    @Test
    fun `the watchdog survives an interrupt and still reports stalls`() {
        RunSyncLoop.create("threads-watchdog").use { loop ->
            loop.stallThreshold = Duration.ofMillis(50)
            loop.runSync { }
            LogCapture().use { log ->
                repeatRounds(3) { round ->
                    val watchdog = liveThreads("corobridge-watchdog").single()
                    watchdog.interrupt()
                    val release = CountDownLatch(1)
                    val stalled = loop.runAsync { check(release.await(10, TimeUnit.SECONDS)) }
                    awaitState("the stall of round $round is reported") {
                        log.messages(Level.WARNING).count { it.contains("loop \"threads-watchdog\" has been busy") } >= round
                    }
                    release.countDown()
                    stalled.join()
                    assertSame(watchdog, liveThreads("corobridge-watchdog").single(), "the same watchdog thread")
                }
            }
        }
    }

    @Test
    fun `loop and worker threads survive interrupts and end only when the loop closes`() {
        val loop = RunSyncLoop.create("threads-survive")
        loop.runSync { loop.runInWorkerThread { } }
        repeatRounds(5) {
            for (t in liveThreads("corobridge-loop-threads-survive") + liveThreads("corobridge-worker-threads-survive")) {
                t.interrupt()
            }
            assertEquals(42, loop.runSync { loop.runInWorkerThread { 42 } })
        }
        assertEquals(1, liveThreads("corobridge-loop-threads-survive").size)
        loop.close()
    }

    @Test
    fun `library threads belong to a group of their own, not the group of the thread that made them`() {
        // What `mvn exec:java` does: the program runs in a thread group of its own, and when main returns
        // every thread left in that group is interrupted and waited for.
        val group = ThreadGroup("program")
        val loopHolder = AtomicReference<RunSyncLoop>()
        val main = Thread(group, {
            val loop = RunSyncLoop.create("threads-group")
            loopHolder.set(loop)
            loop.runSync { loop.runInWorkerThread { } }
        }, "program-main")
        main.start()
        main.join()
        try {
            val inGroup = arrayOfNulls<Thread>(group.activeCount() + 8)
            val count = group.enumerate(inGroup, true)
            val names = inGroup.take(count).filterNotNull().map { it.name }
            assertTrue(names.none { it.startsWith("corobridge-") }, "library threads in the program's group: $names")
            val loopThread = liveThreads("corobridge-loop-threads-group").single()
            assertNotSame(group, loopThread.threadGroup)
            assertEquals("corobridge", loopThread.threadGroup.name)
        } finally {
            loopHolder.get().close()
        }
    }

    @Test
    fun `library threads carry corobridge's class loader, not the one of the thread that made them`() {
        val foreign = object : ClassLoader(null) {}
        val loopHolder = AtomicReference<RunSyncLoop>()
        val maker = Thread {
            val loop = RunSyncLoop.create("threads-loader")
            loopHolder.set(loop)
            loop.runSync { loop.runInWorkerThread { } }
        }
        maker.contextClassLoader = foreign
        maker.start()
        maker.join()
        val loop = loopHolder.get()
        try {
            val own = RunSyncLoop::class.java.classLoader
            val loaders = loop.runSync {
                listOf(Thread.currentThread().contextClassLoader, loop.runInWorkerThread { Thread.currentThread().contextClassLoader })
            }
            assertEquals(listOf(own, own), loaders)
            for (t in liveThreads("corobridge-watchdog")) assertFalse(t.contextClassLoader === foreign)
        } finally {
            loop.close()
        }
    }
}
