package io.corobridge.core

import java.io.IOException
import java.util.concurrent.CancellationException
import java.util.concurrent.CompletionException
import java.util.concurrent.CountDownLatch
import java.util.concurrent.ExecutionException
import java.util.concurrent.TimeUnit
import java.util.concurrent.TimeoutException
import java.util.concurrent.atomic.AtomicBoolean
import kotlin.concurrent.thread
import kotlinx.coroutines.CompletableDeferred
import kotlinx.coroutines.awaitCancellation
import kotlinx.coroutines.yield
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertInstanceOf
import org.junit.jupiter.api.Assertions.assertSame
import org.junit.jupiter.api.Assertions.assertThrows
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.extension.RegisterExtension

class RunAsyncTest {
    @JvmField
    @RegisterExtension
    val loops = TestLoops()
    private val loop = loops.create("async")

    @Test
    fun `completing the future with an exception whose toString throws cancels the call`() {
        repeatRounds(10) {
            val started = CountDownLatch(1)
            val finallyRan = CountDownLatch(1)
            val future = loop.runAsync {
                try {
                    started.countDown()
                    awaitCancellation()
                } finally {
                    finallyRan.countDown()
                }
            }
            assertTrue(started.await(10, TimeUnit.SECONDS))
            assertTrue(future.completeExceptionally(HostileException()))
            assertTrue(finallyRan.await(10, TimeUnit.SECONDS), "the coroutine behind the future was cancelled")
        }
        awaitState("no call is left in flight") { loop.stats().callsInFlight == 0L }
    }

    @Test
    fun `a call failing with an exception whose toString throws completes its future despite dependent stages`() {
        val reported = java.util.concurrent.CopyOnWriteArrayList<Throwable>()
        loop.failureHandler = Thread.UncaughtExceptionHandler { _, e -> reported.add(e) }
        repeatRounds(10) {
            val gate = CompletableDeferred<Unit>()
            val failure = HostileException()
            val future = loop.runAsync { gate.await(); throw failure }
            // A dependent stage makes CompletableFuture wrap the failure, calling its toString().
            future.thenApply { it }
            gate.complete(Unit)
            assertSame(failure, future.handle { _, e -> e }.get(10, TimeUnit.SECONDS))
        }
        awaitState("no call is left in flight") { loop.stats().callsInFlight == 0L }
        assertEquals(7, loop.runSync { 7 }, "the loop still serves")
        // What the dependent stages threw while being completed was reported, not lost.
        assertEquals(10, reported.size, reported.toString())
    }

    @Test
    fun `completes with the value on the loop thread`() {
        val future = loop.runAsync { yield(); Thread.currentThread().name }
        assertEquals("corobridge-loop-async", future.get(10, TimeUnit.SECONDS))
        val completer = loop.runAsync { yield(); 1 }.thenApply { Thread.currentThread().name }
        val name = completer.get(10, TimeUnit.SECONDS)
        assertTrue(name == "corobridge-loop-async" || name == Thread.currentThread().name, name)
    }

    @Test
    fun `completes exceptionally with the exception unwrapped`() {
        val checked = IOException("no")
        val future = loop.runAsync<Unit> { yield(); throw checked }
        val viaGet = assertThrows(ExecutionException::class.java) { future.get(10, TimeUnit.SECONDS) }
        assertTrue(viaGet.cause === checked)
        val viaJoin = assertThrows(CompletionException::class.java) { future.join() }
        assertTrue(viaJoin.cause === checked)
    }

    @Test
    fun `cancelling the future cancels the running coroutine`() {
        repeatRounds(20) {
            val started = CountDownLatch(1)
            val cancelled = CompletableDeferred<Throwable>()
            val future = loop.runAsync {
                try {
                    started.countDown()
                    awaitCancellation()
                } catch (e: kotlinx.coroutines.CancellationException) {
                    cancelled.complete(e)
                    throw e
                }
            }
            started.await()
            assertTrue(future.cancel(true))
            val cause = loop.runSync { cancelled.await() }
            assertInstanceOf(CancellationException::class.java, cause)
        }
    }

    @Test
    fun `cancelling the future before the call runs means it never runs`() {
        val loopBusy = CountDownLatch(1)
        val release = CountDownLatch(1)
        // Occupy the loop thread (blocking it on purpose) so the next call stays queued.
        val blocker = loop.runAsync { loopBusy.countDown(); release.await() }
        loopBusy.await()
        val ran = AtomicBoolean()
        val queued = loop.runAsync { ran.set(true) }
        assertTrue(queued.cancel(false))
        release.countDown()
        blocker.get(10, TimeUnit.SECONDS)
        assertFalse(loop.runSync { yield(); ran.get() }, "the cancelled call's body never ran")
        assertTrue(queued.isCancelled)
    }

    @Test
    fun `orTimeout on the future cancels the coroutine`() {
        val cancelled = CompletableDeferred<Unit>()
        val future = loop.runAsync {
            try {
                awaitCancellation()
            } finally {
                cancelled.complete(Unit)
            }
        }.orTimeout(20, TimeUnit.MILLISECONDS)
        val thrown = assertThrows(ExecutionException::class.java) { future.get(10, TimeUnit.SECONDS) }
        assertInstanceOf(TimeoutException::class.java, thrown.cause)
        loop.runSync { cancelled.await() }
    }

    @Test
    fun `waiting on the future from its own loop thread fails instead of deadlocking`() {
        val thrown = assertThrows(IllegalStateException::class.java) {
            loop.runSync {
                val inner = loop.runAsync { yield(); 1 }
                inner.join()
            }
        }
        assertTrue(thrown.message!!.contains("would deadlock"), thrown.message)
        assertEquals(2, loop.runSync { loop.runAsync { 2 }.let { f -> yield(); f.getNow(-1) } })
    }

    @Test
    fun `closing the loop completes pending futures with a cancellation naming the loop`() {
        val other = RunSyncLoop.create("async-closing")
        val started = CountDownLatch(1)
        val future = other.runAsync { started.countDown(); awaitCancellation() }
        started.await()
        thread { other.close() }.join()
        val thrown = assertThrows(CancellationException::class.java) { future.join() }
        assertTrue(thrown.message!!.contains("\"async-closing\" closed"), thrown.message)
    }
}
