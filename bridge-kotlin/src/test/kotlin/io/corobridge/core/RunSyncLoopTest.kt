package io.corobridge.core

import java.util.Collections
import java.util.concurrent.CancellationException
import java.util.concurrent.CompletableFuture
import java.util.concurrent.CountDownLatch
import java.util.concurrent.CyclicBarrier
import java.util.concurrent.TimeUnit
import java.util.concurrent.atomic.AtomicBoolean
import java.util.concurrent.atomic.AtomicReference
import kotlin.concurrent.thread
import kotlinx.coroutines.CompletableDeferred
import kotlinx.coroutines.NonCancellable
import kotlinx.coroutines.awaitCancellation
import kotlinx.coroutines.launch
import kotlinx.coroutines.withContext
import kotlinx.coroutines.yield
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertInstanceOf
import org.junit.jupiter.api.Assertions.assertSame
import org.junit.jupiter.api.Assertions.assertThrows
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.extension.RegisterExtension

class RunSyncLoopTest {
    @JvmField
    @RegisterExtension
    val loops = TestLoops()

    @Test
    fun `loop thread is a daemon named after the loop and starts on first use`() {
        RunSyncLoop.create("life-lazy").use { loop ->
            assertTrue(liveThreads("corobridge-loop-life-lazy").isEmpty(), "no thread before first use")
            val thread = loop.runSync { Thread.currentThread() }
            assertEquals("corobridge-loop-life-lazy", thread.name)
            assertTrue(thread.isDaemon)
        }
    }

    @Test
    fun `thread starts exactly once when many threads race to use the loop first`() {
        repeatRounds(20) { round ->
            RunSyncLoop.create("life-race-$round").use { loop ->
                val callers = 16
                val barrier = CyclicBarrier(callers)
                val seen = Collections.synchronizedSet(HashSet<Thread>())
                val threads = List(callers) {
                    thread {
                        barrier.await()
                        seen.add(loop.runSync { Thread.currentThread() })
                    }
                }
                threads.forEach { it.join() }
                assertEquals(1, seen.size, "every call ran on one thread")
                assertEquals(1, liveThreads("corobridge-loop-life-race-$round").size)
            }
        }
    }

    @Test
    fun `close cancels calls in flight and releases their callers after their finally blocks ran`() {
        val loop = RunSyncLoop.create("life-close")
        val started = CountDownLatch(1)
        val finallyRan = AtomicBoolean()
        val failure = CompletableFuture<Throwable>()
        val finallyAtReturn = AtomicBoolean()
        val caller = thread {
            try {
                loop.runSync {
                    try {
                        started.countDown()
                        awaitCancellation()
                    } finally {
                        withContext(NonCancellable) { yield() }
                        finallyRan.set(true)
                    }
                }
            } catch (e: Throwable) {
                finallyAtReturn.set(finallyRan.get())
                failure.complete(e)
            }
        }
        started.await()
        loop.close()
        caller.join()
        val thrown = failure.getNow(null)
        assertInstanceOf(CancellationException::class.java, thrown)
        assertTrue(thrown.message!!.contains("\"life-close\""), thrown.message)
        assertTrue(finallyAtReturn.get(), "the coroutine's finally ran before the caller returned")
        assertFalse(loop.thread.isAlive, "close() returns after the thread has ended")
    }

    @Test
    fun `close releases a caller whose call ignores cancellation`() {
        val loop = RunSyncLoop.create("life-stubborn")
        loop.closing.closeGraceNanos = TimeUnit.MILLISECONDS.toNanos(200)
        val gate = CompletableDeferred<Unit>()
        val started = CountDownLatch(1)
        val failure = CompletableFuture<Throwable>()
        val caller = thread {
            try {
                loop.runSync { withContext(NonCancellable) { started.countDown(); gate.await() } }
            } catch (e: Throwable) {
                failure.complete(e)
            }
        }
        started.await()
        loop.close()
        caller.join()
        val thrown = failure.getNow(null)
        assertInstanceOf(IllegalStateException::class.java, thrown)
        assertTrue(thrown.message!!.contains("closed before the call finished"), thrown.message)
        assertFalse(loop.thread.isAlive)
        gate.complete(Unit) // its continuation now goes to the closed loop, which moves it off to finish
    }

    @Test
    fun `close releases the caller of a call that suspends just after close began`() {
        // The call's body runs while close() cancels the supervisor, which, having no children yet, finishes;
        // only then does the body suspend and the call try to join it. Its caller, parked by then, must still
        // be released when the loop gives up on its calls.
        repeatRounds(2) {
            val loop = RunSyncLoop.create("life-late")
            loop.closing.closeGraceNanos = TimeUnit.MILLISECONDS.toNanos(300) // how long close waits for the call
            loop.stallThreshold = null // the body holds the loop thread on purpose
            // The caller spins instead of parking at once (a parked caller joins the supervisor early, which
            // hides the race); it parks after 1 s, while a shutdown callback holds the close open.
            loop.waitStrategy = WaitStrategy.adaptive(java.time.Duration.ofSeconds(1), java.time.Duration.ZERO)
            val holdClose = CompletableDeferred<Unit>()
            loop.onShutdown { holdClose.await() }
            val started = CountDownLatch(1)
            val proceed = CountDownLatch(1)
            val gate = CompletableDeferred<Unit>()
            val failure = CompletableFuture<Throwable>()
            val caller = thread(name = "late-caller") {
                try {
                    loop.runSync {
                        started.countDown()
                        check(proceed.await(10, TimeUnit.SECONDS))
                        withContext(NonCancellable) { gate.await() }
                    }
                } catch (e: Throwable) {
                    failure.complete(e)
                }
            }
            started.await()
            val closer = thread(name = "late-closer") { loop.close() }
            awaitState("the supervisor has finished") { loop.supervisorJob.isCompleted }
            proceed.countDown()
            awaitParkedInSync(caller)
            holdClose.complete(Unit)
            caller.join(TimeUnit.SECONDS.toMillis(10))
            closer.join(TimeUnit.SECONDS.toMillis(10))
            assertFalse(caller.isAlive, "the caller was released")
            assertFalse(closer.isAlive, "close() returned")
            val thrown = failure.getNow(null)
            assertInstanceOf(IllegalStateException::class.java, thrown)
            assertTrue(thrown.message!!.contains("closed before the call finished"), thrown.message)
            gate.complete(Unit)
        }
    }

    @Test
    fun `calls after close are refused with an IllegalStateException naming the loop`() {
        val loop = RunSyncLoop.create("life-after")
        loop.runSync { 1 }
        loop.close()
        val sync = assertThrows(IllegalStateException::class.java) { loop.runSync<Int> { 2 } }
        assertTrue(sync.message!!.contains("\"life-after\" is closed"), sync.message)
        val async = assertThrows(IllegalStateException::class.java) { loop.runAsync { 3 } }
        assertTrue(async.message!!.contains("\"life-after\" is closed"), async.message)
        assertTrue(loop.isClosed)
    }

    @Test
    fun `closing a loop that never ran and closing twice are harmless`() {
        val loop = RunSyncLoop.create("life-idle")
        loop.close()
        loop.close()
        assertFalse(loop.thread.isAlive)
        assertThrows(IllegalStateException::class.java) { loop.runSync<Int> { 1 } }
    }

    @Test
    @OptIn(kotlinx.coroutines.DelicateCoroutinesApi::class)
    fun `a coroutine dispatched to a closed loop is cancelled instead of lost`() {
        val loop = RunSyncLoop.create("life-dispatch")
        loop.close()
        val job = kotlinx.coroutines.GlobalScope.launch(loop.dispatcher) { awaitCancellation() }
        kotlinx.coroutines.runBlocking { job.join() }
        assertTrue(job.isCancelled)
    }

    @Test
    fun `close from the loop thread returns at once and the loop still closes`() {
        val loop = RunSyncLoop.create("life-self")
        val returned = CompletableFuture<Boolean>()
        loop.scope.launch {
            loop.close()
            returned.complete(true)
        }
        assertTrue(returned.get(10, TimeUnit.SECONDS), "close() returned on the loop thread")
        loop.thread.join()
        assertTrue(loop.isClosed)
        // A call in flight when its own loop closes is cancelled like any other.
        val other = RunSyncLoop.create("life-self-call")
        val thrown = assertThrows(CancellationException::class.java) { other.runSync { other.close(); yield() } }
        assertTrue(thrown.message!!.contains("\"life-self-call\" closed"), thrown.message)
        other.thread.join()
    }

    @Test
    fun `an Error escaping onto the loop thread is reported and the loop keeps serving`() {
        RunSyncLoop.create("life-error").use { loop ->
            val reported = CompletableFuture<Pair<Thread, Throwable>>()
            loop.failureHandler = Thread.UncaughtExceptionHandler { t, e -> reported.complete(t to e) }
            val boom = AssertionError("boom on the loop")
            loop.dispatcher.dispatch(kotlin.coroutines.EmptyCoroutineContext, Runnable { throw boom })
            val (where, what) = reported.get(10, TimeUnit.SECONDS)
            assertSame(boom, what)
            assertEquals("corobridge-loop-life-error", where.name)
            assertEquals(42, loop.runSync { yield(); 42 })
        }
    }

    @Test
    fun `an Error thrown by a call reaches its caller unchanged and the loop keeps serving`() {
        RunSyncLoop.create("life-error-call").use { loop ->
            val error = StackOverflowError("deep")
            val thrown = assertThrows(StackOverflowError::class.java) { loop.runSync<Int> { yield(); throw error } }
            assertSame(error, thrown)
            assertEquals(7, loop.runSync { 7 })
        }
    }

    @Test
    fun `without a handler, failures on the loop are logged with their stack trace`() {
        LogCapture().use { logs ->
            RunSyncLoop.create("life-log").use { loop ->
                val boom = IllegalStateException("logged")
                loop.dispatcher.dispatch(kotlin.coroutines.EmptyCoroutineContext, Runnable { throw boom })
                loop.runSync { yield() } // the failing task ran before this one
                val record = logs.records.single { it.thrown === boom }
                assertEquals(java.util.logging.Level.SEVERE, record.level)
                assertTrue(record.message.contains("\"life-log\""))
            }
        }
    }

    @Test
    fun `when the loop thread dies every waiting caller is released with a clear error`() {
        LogCapture().use {
            val loop = RunSyncLoop.create("life-fatal")
            // A failure handler that runs out of memory cannot report anything: the loop stops.
            loop.failureHandler = Thread.UncaughtExceptionHandler { _, _ -> throw OutOfMemoryError("simulated") }
            val started = CountDownLatch(3)
            val failures = Collections.synchronizedList(ArrayList<Throwable>())
            val callers = List(3) {
                thread {
                    try {
                        loop.runSync { started.countDown(); awaitCancellation() }
                    } catch (e: Throwable) {
                        failures.add(e)
                    }
                }
            }
            started.await()
            loop.dispatcher.dispatch(kotlin.coroutines.EmptyCoroutineContext, Runnable { throw AssertionError("x") })
            callers.forEach { it.join() }
            assertEquals(3, failures.size)
            for (failure in failures) {
                assertInstanceOf(IllegalStateException::class.java, failure)
                assertTrue(failure.message!!.contains("died"), failure.message)
                assertInstanceOf(OutOfMemoryError::class.java, failure.cause)
            }
            loop.thread.join()
            assertThrows(IllegalStateException::class.java) { loop.runSync<Int> { 1 } }
        }
    }

    @Test
    fun `the default loop is shared, named default, and refuses to be closed by hand`() {
        assertSame(RunSyncLoop.default, RunSyncLoop.default)
        assertEquals("corobridge-loop-default", RunSyncLoop.default.runSync { Thread.currentThread().name })
        val thrown = assertThrows(IllegalStateException::class.java) { RunSyncLoop.default.close() }
        assertTrue(thrown.message!!.contains("shutdown hook"))
        assertFalse(RunSyncLoop.default.isClosed)
    }

    @Test
    fun `scope runs launched coroutines on the loop and close cancels them`() {
        val loop = RunSyncLoop.create("life-scope")
        val where = AtomicReference<Thread>()
        val started = CountDownLatch(1)
        val job = loop.scope.launch {
            where.set(Thread.currentThread())
            started.countDown()
            awaitCancellation()
        }
        started.await()
        loop.close()
        assertTrue(job.isCancelled && job.isCompleted)
        assertSame(loop.thread, where.get())
    }

    @Test
    fun `blank names are rejected`() {
        val thrown = assertThrows(IllegalArgumentException::class.java) { RunSyncLoop.create(" ") }
        assertTrue(thrown.message!!.contains("name"))
    }
}
