package io.corobridge.core

import java.time.Duration
import java.util.concurrent.CompletableFuture
import java.util.concurrent.CountDownLatch
import java.util.concurrent.TimeUnit
import java.util.concurrent.atomic.AtomicInteger
import java.util.concurrent.atomic.AtomicReference
import java.util.logging.Level
import kotlin.concurrent.thread
import kotlin.coroutines.resume
import kotlinx.coroutines.CancellableContinuation
import kotlinx.coroutines.NonCancellable
import kotlinx.coroutines.suspendCancellableCoroutine
import kotlinx.coroutines.withContext
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertInstanceOf
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.extension.RegisterExtension

/**
 * close() keeps a bounded budget whatever user code does: background tasks and callbacks that ignore
 * cancellation, a loop thread stuck in blocking code. What it abandons it reports; the callbacks run once.
 *
 * The budgets are shortened here (closeGraceNanos, callbacksBudgetNanos: 300 ms each instead of 5 s); the
 * elapsed-time checks are generous upper bounds that the old behaviour exceeded by seconds, not measurements.
 */
class RunSyncLoopCloseTest {
    @JvmField
    @RegisterExtension
    val loops = TestLoops()
    private val shortNanos = TimeUnit.MILLISECONDS.toNanos(300)

    private fun shortLoop(name: String): RunSyncLoop = RunSyncLoop.create(name).also {
        it.closing.closeGraceNanos = shortNanos
        it.closing.callbacksBudgetNanos = shortNanos
    }

    /** Suspends for good, even when cancelled; the test resumes it through [holder] once it is done. */
    private suspend fun ignoreCancellationForever(holder: CompletableFuture<CancellableContinuation<Unit>>) {
        withContext(NonCancellable) { suspendCancellableCoroutine<Unit> { holder.complete(it) } }
    }

    private fun millisSince(start: Long) = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start)

    @Test
    fun `a background task that ignores cancellation cannot stop close from running the callbacks`() {
        LogCapture().use { log ->
            val loop = shortLoop("close-task")
            val holder = CompletableFuture<CancellableContinuation<Unit>>()
            val callbackRuns = AtomicInteger()
            loop.onShutdown { callbackRuns.incrementAndGet() }
            loop.launch { ignoreCancellationForever(holder) }
            holder.get(10, TimeUnit.SECONDS)
            val start = System.nanoTime()
            loop.close(Duration.ofMillis(300))
            val took = millisSince(start)
            assertEquals(1, callbackRuns.get(), "the shutdown callback ran once")
            assertTrue(took < 4_000, "close took $took ms; its budget is 0.3 + 0.3 + 0.3 s")
            val warning = log.messages(Level.WARNING).single { it.contains("abandoned") }
            assertTrue(warning.contains("1 background task(s) were still running"), warning)
            // The task is named by its code and the line it is stuck on.
            assertTrue(warning.contains("RunSyncLoopCloseTest"), warning)
            assertTrue(warning.contains("suspended at"), warning)
            assertNoThreads("corobridge-loop-close-task")
            holder.get().resume(Unit) // let it end (on Dispatchers.IO, the loop being closed)
        }
    }

    @Test
    fun `a loop thread stuck in a task holds close only for the grace, and the callbacks still run once`() {
        LogCapture().use { log ->
            val loop = shortLoop("close-stuck")
            // A long callbacks budget sets the stuck deadline (grace + calls' grace, 0.5 s) well apart from the
            // end of the whole budget (0.2 + 0.3 + 3 + 1 s), where a close that did not detect it would return.
            loop.closing.callbacksBudgetNanos = TimeUnit.SECONDS.toNanos(3)
            val callbackRuns = AtomicInteger()
            val callbackThread = AtomicReference<Thread>()
            loop.onShutdown { callbackRuns.incrementAndGet(); callbackThread.set(Thread.currentThread()) }
            val release = CountDownLatch(1)
            val entered = CountDownLatch(1)
            val callerGot = AtomicReference<Throwable>()
            val caller = thread(name = "close-stuck-caller") {
                try {
                    loop.runSync { entered.countDown(); release.await(30, TimeUnit.SECONDS) }
                } catch (e: Throwable) {
                    callerGot.set(e)
                }
            }
            assertTrue(entered.await(10, TimeUnit.SECONDS))
            val start = System.nanoTime()
            loop.close(Duration.ofMillis(200))
            val took = millisSince(start)
            // Stuck since close began: released after grace + calls' grace (0.5 s), not the whole budget plus a
            // wait for a worker pool nobody stopped (4.5 s + 0.3 s here; 16 s with the default 5 s budgets).
            assertTrue(took < 3_000, "close took $took ms")
            caller.join(10_000)
            assertInstanceOf(IllegalStateException::class.java, callerGot.get())
            assertEquals(1, callbackRuns.get(), "the callback ran, on the closing thread")
            assertEquals(Thread.currentThread(), callbackThread.get())
            assertTrue(log.messages(Level.WARNING).any { it.contains("could not finish closing") })
            release.countDown()
            awaitState("the loop thread ends once its task returns") { liveThreads("corobridge-loop-close-stuck").isEmpty() }
            assertEquals(1, callbackRuns.get(), "the loop thread did not run the callback a second time")
        }
    }

    @Test
    fun `a callback that ignores cancellation does not stop the others from running once`() {
        LogCapture().use { log ->
            val loop = shortLoop("close-callback")
            val holder = CompletableFuture<CancellableContinuation<Unit>>()
            val ran = java.util.concurrent.CopyOnWriteArrayList<String>()
            loop.onShutdown { ran.add("first registered") }
            loop.onShutdown { ran.add("stuck"); ignoreCancellationForever(holder) }
            loop.onShutdown { ran.add("last registered") }
            loop.runSync { }
            val start = System.nanoTime()
            loop.close(Duration.ZERO)
            val took = millisSince(start)
            assertEquals(listOf("last registered", "stuck", "first registered"), ran.toList())
            assertTrue(took < 4_000, "close took $took ms; its budget is 0 + 0.3 + 0.3 s")
            assertTrue(
                log.messages(Level.WARNING).any { it.contains("has not finished") && it.contains("1 remaining shutdown callback") },
                log.messages(Level.WARNING).toString(),
            )
            assertNoThreads("corobridge-loop-close-callback")
            holder.get(10, TimeUnit.SECONDS).resume(Unit)
        }
    }
}
