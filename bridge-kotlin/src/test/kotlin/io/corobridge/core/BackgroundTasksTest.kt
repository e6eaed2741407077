package io.corobridge.core

import java.io.IOException
import java.lang.ref.WeakReference
import java.time.Duration
import java.util.Collections
import java.util.concurrent.CancellationException
import java.util.concurrent.CompletableFuture
import java.util.concurrent.CountDownLatch
import java.util.concurrent.ExecutionException
import java.util.concurrent.TimeUnit
import java.util.logging.Level
import kotlin.concurrent.thread
import kotlin.coroutines.resume
import kotlinx.coroutines.CompletableDeferred
import kotlinx.coroutines.awaitCancellation
import kotlinx.coroutines.suspendCancellableCoroutine
import kotlinx.coroutines.yield
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertInstanceOf
import org.junit.jupiter.api.Assertions.assertNotNull
import org.junit.jupiter.api.Assertions.assertSame
import org.junit.jupiter.api.Assertions.assertThrows
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.extension.RegisterExtension

/** Background tasks ([RunSyncLoop.launch]), shutdown callbacks and `close(grace)`. */
class BackgroundTasksTest {
    @JvmField
    @RegisterExtension
    val loops = TestLoops()

    private fun <R> withLoop(name: String, block: (RunSyncLoop) -> R): R {
        val loop = loops.create(name)
        try {
            return block(loop)
        } finally {
            loop.close(Duration.ZERO) // no grace: TestLoops' own close() would give tasks 5 s
        }
    }

    @Test
    fun `a task whose only reference is the loop's still completes after a garbage collection`() = withLoop("bg-gc") { loop ->
        val finished = CountDownLatch(1)
        val parked = CompletableFuture<WeakReference<kotlinx.coroutines.CancellableContinuation<Unit>>>()
        loop.launch {
            // Suspend on a continuation that nothing outside the coroutine references strongly.
            suspendCancellableCoroutine<Unit> { continuation -> parked.complete(WeakReference(continuation)) }
            finished.countDown()
        }
        val weak = parked.get(10, TimeUnit.SECONDS)
        repeat(3) { System.gc() }
        val continuation = weak.get()
        assertNotNull(continuation, "the suspended task was collected: the loop did not hold it")
        continuation!!.resume(Unit)
        assertTrue(finished.await(10, TimeUnit.SECONDS))
    }

    @Test
    fun `a failure whose toString throws still completes the task and is reported`() = withLoop("bg-hostile") { loop ->
        val reported = java.util.concurrent.LinkedBlockingQueue<Throwable>()
        loop.failureHandler = Thread.UncaughtExceptionHandler { _, e -> reported.add(e) }
        repeatRounds(10) {
            val failure = HostileException()
            val task = loop.launch { yield(); throw failure }
            val ended = task.completion.handle { _, e -> e }.get(10, TimeUnit.SECONDS)
            assertSame(failure, ended, "the completion holds the failure itself")
            assertTrue(task.isDone)
            assertSame(failure, reported.poll(10, TimeUnit.SECONDS))
        }
        awaitState("no background task is left running") { loop.stats().backgroundTasks == 0 }
        // Logged by default: the log cannot print it, and says so instead of failing.
        loop.failureHandler = null
        val task = loop.launch { throw HostileException() }
        val ended = task.completion.handle { _, e -> e }.get(10, TimeUnit.SECONDS)
        assertInstanceOf(HostileException::class.java, ended)
        Unit
    }

    @Test
    fun `a failing task is reported to the failure handler, never swallowed`() = withLoop("bg-fail") { loop ->
        val reported = CompletableFuture<Throwable>()
        loop.failureHandler = Thread.UncaughtExceptionHandler { _, e -> reported.complete(e) }
        val boom = IOException("background failure")
        val task = loop.launch { yield(); throw boom }
        assertSame(boom, reported.get(10, TimeUnit.SECONDS))
        val thrown = assertThrows(ExecutionException::class.java) { task.completion.get(10, TimeUnit.SECONDS) }
        assertSame(boom, thrown.cause)
        assertTrue(task.isDone)
    }

    @Test
    fun `cancel stops the task, completes its completion, and is not reported as a failure`() = withLoop("bg-cancel") { loop ->
        val reported = CompletableFuture<Throwable>()
        loop.failureHandler = Thread.UncaughtExceptionHandler { _, e -> reported.complete(e) }
        val started = CountDownLatch(1)
        val finallyRan = CountDownLatch(1)
        val task = loop.launch {
            try {
                started.countDown()
                awaitCancellation()
            } finally {
                finallyRan.countDown()
            }
        }
        started.await()
        assertFalse(task.isDone)
        task.cancel()
        assertTrue(finallyRan.await(10, TimeUnit.SECONDS))
        assertThrows(CancellationException::class.java) { task.completion.join() }
        assertTrue(task.isDone)
        loop.runSync { yield() } // the completion callbacks have run
        assertFalse(reported.isDone, "a cancellation is not a failure")
        assertEquals(42, loop.launch { 42 }.completion.get(10, TimeUnit.SECONDS))
    }

    @Test
    fun `close lets tasks finish within the grace period, then runs callbacks newest first past a throwing one`() {
        val loop = RunSyncLoop.create("bg-grace")
        val steps = Collections.synchronizedList(ArrayList<String>())
        val reported = Collections.synchronizedList(ArrayList<Throwable>())
        loop.failureHandler = Thread.UncaughtExceptionHandler { _, e -> reported.add(e) }
        val gate = CompletableDeferred<Unit>()
        val started = CountDownLatch(1)
        val task = loop.launch {
            started.countDown()
            gate.await()
            steps.add("task finished")
        }
        val broken = IllegalStateException("callback 2 broke")
        loop.onShutdown { steps.add("callback 1") }
        loop.onShutdown { throw broken }
        loop.onShutdown { steps.add("callback 3") }
        started.await()
        val closer = thread { loop.close(Duration.ofSeconds(30)) }
        // Wait (with a deadline) until close() has begun; no latch can say so from outside.
        val deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10)
        while (!loop.isClosed) {
            check(System.nanoTime() < deadline) { "close() never began" }
            Thread.onSpinWait()
        }
        // The loop is closing but waits for the task; it refuses new work meanwhile.
        val refused = assertThrows(IllegalStateException::class.java) { loop.launch { } }
        assertTrue(refused.message!!.contains("\"bg-grace\" is closed"), refused.message)
        gate.complete(Unit)
        closer.join()
        assertEquals(listOf("task finished", "callback 3", "callback 1"), steps)
        assertEquals(listOf<Throwable>(broken), reported.toList())
        assertTrue(task.completion.isDone && !task.completion.isCompletedExceptionally, "the task finished, not cancelled")
        assertFalse(loop.thread.isAlive)
        val late = assertThrows(IllegalStateException::class.java) { loop.onShutdown { } }
        assertTrue(late.message!!.contains("shutdown callbacks can no longer be registered"), late.message)
    }

    @Test
    fun `tasks still running after the grace period are cancelled, counted, and finish before the callbacks`() {
        LogCapture().use { logs ->
            val loop = RunSyncLoop.create("bg-past")
            val steps = Collections.synchronizedList(ArrayList<String>())
            val started = CountDownLatch(2)
            repeat(2) { i ->
                loop.launch {
                    try {
                        started.countDown()
                        awaitCancellation()
                    } finally {
                        steps.add("task $i cancelled")
                    }
                }
            }
            loop.onShutdown { steps.add("callback") }
            started.await()
            loop.close(Duration.ofMillis(50))
            assertEquals("callback", steps.last())
            assertEquals(3, steps.size, steps.toString())
            val warning = logs.messages(Level.WARNING).single { it.contains("background task") }
            assertTrue(warning.contains("2 background task(s)") && warning.contains("PT0.05S"), warning)
            assertNoThreads("corobridge-loop-bg-past")
        }
    }

    @Test
    fun `callbacks run exactly once, even on a loop that never ran`() {
        val loop = RunSyncLoop.create("bg-once")
        val runs = java.util.concurrent.atomic.AtomicInteger()
        val where = CompletableFuture<Thread>()
        loop.onShutdown(Runnable {
            runs.incrementAndGet()
            where.complete(Thread.currentThread())
        })
        loop.close()
        loop.close()
        assertEquals(1, runs.get())
        assertSame(loop.thread, where.getNow(null), "the callback ran on the loop thread")
        assertNoThreads("corobridge-loop-bg-once")
    }

    @Test
    fun `bad input and closed loops are refused`() {
        val loop = RunSyncLoop.create("bg-bad")
        val negative = assertThrows(IllegalArgumentException::class.java) { loop.close(Duration.ofSeconds(-1)) }
        assertEquals("grace must not be negative, was PT-1S", negative.message)
        loop.close()
        assertThrows(IllegalStateException::class.java) { loop.launch { } }
        assertInstanceOf(IllegalStateException::class.java, assertThrows(IllegalStateException::class.java) { loop.onShutdown { } })
    }
}
