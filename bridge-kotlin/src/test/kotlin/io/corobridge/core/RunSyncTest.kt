package io.corobridge.core

import java.io.IOException
import java.util.concurrent.CancellationException
import java.util.concurrent.CompletableFuture
import java.util.concurrent.CountDownLatch
import java.util.concurrent.TimeoutException
import java.util.concurrent.atomic.AtomicBoolean
import java.util.concurrent.atomic.AtomicInteger
import java.util.concurrent.atomic.AtomicReference
import kotlin.concurrent.thread
import kotlin.coroutines.Continuation
import kotlin.coroutines.intrinsics.COROUTINE_SUSPENDED
import kotlin.coroutines.resume
import kotlin.time.Duration.Companion.milliseconds
import kotlin.time.Duration.Companion.seconds
import kotlin.coroutines.intrinsics.startCoroutineUninterceptedOrReturn
import kotlinx.coroutines.CompletableDeferred
import kotlinx.coroutines.InternalCoroutinesApi
import kotlinx.coroutines.Job
import kotlinx.coroutines.NonCancellable
import kotlinx.coroutines.awaitCancellation
import kotlinx.coroutines.withContext
import kotlinx.coroutines.yield
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertInstanceOf
import org.junit.jupiter.api.Assertions.assertNull
import org.junit.jupiter.api.Assertions.assertThrows
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.extension.RegisterExtension

class RunSyncTest {
    @JvmField
    @RegisterExtension
    val loops = TestLoops()
    private val loop = loops.create("sync")

    @Test
    fun `body runs on the loop thread from its first line`() {
        val first = loop.runSync { Thread.currentThread().name }
        assertEquals("corobridge-loop-sync", first)
    }

    @Test
    fun `returns values produced at once, after suspending, and null`() {
        assertEquals(1, loop.runSync { 1 })
        assertEquals("after", loop.runSync { yield(); "after" })
        assertNull(loop.runSync<String?> { yield(); null })
    }

    @Test
    fun `a continuation-passing call may answer at once, suspend, or resume before returning`() {
        val immediate = object : SuspendCall<String> {
            override fun invoke(continuation: Continuation<String>): Any = "direct"
        }
        assertEquals("direct", loop.runSync(immediate))

        val resumedInline = object : SuspendCall<String> {
            override fun invoke(continuation: Continuation<String>): Any {
                continuation.resume("resumed inline")
                return COROUTINE_SUSPENDED
            }
        }
        assertEquals("resumed inline", loop.runSync(resumedInline))

        val resumedElsewhere = object : SuspendCall<String> {
            override fun invoke(continuation: Continuation<String>): Any {
                thread(name = "resumer") { continuation.resume("resumed by ${Thread.currentThread().name}") }
                return COROUTINE_SUSPENDED
            }
        }
        assertEquals("resumed by resumer", loop.runSync(resumedElsewhere))
    }

    @Test
    fun `exceptions cross unchanged, checked ones included, with the caller's frames attached`() {
        val checked = IOException("disk gone")
        val thrown = assertThrows(IOException::class.java) { loop.runSync<Unit> { yield(); throw checked } }
        assertTrue(thrown === checked, "the same instance")
        val callerSide = thrown.suppressed.filterIsInstance<CalledFrom>().single()
        assertEquals(Thread.currentThread().name, callerSide.threadName)
        assertTrue(callerSide.toString().startsWith("io.corobridge.core.CalledFrom: thread \""), callerSide.toString())
        assertTrue(
            callerSide.stackTrace.any { it.className == RunSyncTest::class.java.name },
            "the suppressed exception carries this test's frames",
        )
        assertTrue(thrown.stackTrace.any { it.className.startsWith(RunSyncTest::class.java.name) })

        val unchecked = IllegalArgumentException("bad")
        val direct = assertThrows(IllegalArgumentException::class.java) { loop.runSync<Unit> { throw unchecked } }
        assertTrue(direct === unchecked)

        val fromCall = object : SuspendCall<Unit> {
            override fun invoke(continuation: Continuation<Unit>): Any = throw checked
        }
        assertTrue(assertThrows(IOException::class.java) { loop.runSync(fromCall) } === checked)
    }

    @Test
    fun `a cancellation thrown by the call itself reaches the caller unchanged`() {
        val own = CancellationException("the call's own")
        val thrown = assertThrows(CancellationException::class.java) { loop.runSync<Unit> { throw own } }
        assertTrue(thrown === own)
    }

    @Test
    fun `a hundred callers interleave on the loop while each is suspended`() {
        repeatRounds(5) {
            val callers = 100
            val suspended = AtomicInteger()
            val allIn = CompletableDeferred<Unit>()
            val results = CompletableFuture<List<Int>>()
            val collected = java.util.Collections.synchronizedList(ArrayList<Int>())
            val threads = List(callers) { i ->
                thread {
                    collected.add(loop.runSync {
                        // Every call waits until all hundred are suspended here at once: only possible if
                        // one suspended call never holds up the others.
                        if (suspended.incrementAndGet() == callers) allIn.complete(Unit)
                        allIn.await()
                        i
                    })
                }
            }
            threads.forEach { it.join() }
            results.complete(collected.sorted())
            assertEquals((0 until callers).toList(), results.get())
        }
    }

    @Test
    fun `interrupting the caller cancels the call, waits for its finally, and re-asserts the flag`() {
        assertInterruptCancelsAndWaitsForFinally(loop, rounds = 20)
    }

    @Test
    fun `an already interrupted caller does not start the call`() {
        val ran = AtomicBoolean()
        Thread.currentThread().interrupt()
        try {
            assertThrows(CancellationException::class.java) { loop.runSync { ran.set(true) } }
            assertTrue(Thread.currentThread().isInterrupted)
        } finally {
            Thread.interrupted()
        }
        assertFalse(loop.runSync { ran.get() })
    }

    @Test
    fun `a timeout cancels the call, waits for its finally, and throws TimeoutException`() {
        val bodyStarted = AtomicBoolean()
        val finallyDone = AtomicBoolean()
        val thrown = assertThrows(TimeoutException::class.java) {
            loop.runSync(50.milliseconds) {
                try {
                    bodyStarted.set(true)
                    awaitCancellation()
                } finally {
                    withContext(NonCancellable) { yield() }
                    finallyDone.set(true)
                }
            }
        }
        // A call still queued at the deadline never starts (on a loaded machine it can happen); one that
        // started has run its finally block before TimeoutException was thrown.
        assertEquals(bodyStarted.get(), finallyDone.get(), "the finally ran if and only if the body started")
        assertTrue(thrown.message!!.contains("PT0.05S"), thrown.message)
        assertEquals(5, loop.runSync(10.seconds) { yield(); 5 })
        assertEquals(6, loop.runSync(java.time.Duration.ofSeconds(10), fixed(6)))
    }

    @Test
    fun `a java Duration timeout works the same and a non-positive one is rejected`() {
        val waitsForCancellation = object : SuspendCall<Unit> {
            // What a Java lambda calling a Kotlin suspend function does: c -> awaitCancellation(c).
            override fun invoke(continuation: Continuation<Unit>): Any? =
                suspend { awaitCancellation() }.startCoroutineUninterceptedOrReturn(continuation)
        }
        assertThrows(TimeoutException::class.java) {
            loop.runSync(java.time.Duration.ofMillis(20), waitsForCancellation)
        }
        val zero = assertThrows(IllegalArgumentException::class.java) {
            loop.runSync(java.time.Duration.ZERO, fixed(1))
        }
        assertTrue(zero.message!!.contains("timeout must be positive"))
        assertThrows(IllegalArgumentException::class.java) { loop.runSync(java.time.Duration.ofSeconds(-1), fixed(1)) }
        assertThrows(IllegalArgumentException::class.java) { loop.runSync<Int>(0.milliseconds) { 1 } }
        assertEquals(3, loop.runSync(java.time.Duration.ofSeconds(Long.MAX_VALUE), fixed(3)), "huge means no deadline")
    }

    @OptIn(InternalCoroutinesApi::class)
    @Test
    fun `a second interrupt releases a caller whose cancelled call ignores cancellation`() {
        val cancelRequested = CountDownLatch(1)
        val captured = AtomicReference<Continuation<Unit>>()
        val ignoresCancellation = object : SuspendCall<Unit> {
            override fun invoke(continuation: Continuation<Unit>): Any {
                captured.set(continuation)
                continuation.context[Job]!!.invokeOnCompletion(onCancelling = true, invokeImmediately = true) {
                    cancelRequested.countDown()
                }
                return COROUTINE_SUSPENDED // and never looks at cancellation again
            }
        }
        val thrown = AtomicReference<Throwable>()
        val caller = thread {
            try {
                loop.runSync(java.time.Duration.ofMillis(10), ignoresCancellation)
            } catch (e: Throwable) {
                thrown.set(e)
            }
        }
        cancelRequested.await() // the deadline passed and the caller cancelled the call; now it waits for it
        caller.interrupt()
        caller.join()
        assertInstanceOf(CancellationException::class.java, thrown.get())
        assertTrue(thrown.get().message!!.contains("left running"), thrown.get().message)
        captured.get().resume(Unit) // let the abandoned call end, so closing the loop is prompt
    }

    private fun <T> fixed(value: T) = object : SuspendCall<T> {
        override fun invoke(continuation: Continuation<T>): Any? = value
    }

    @Test
    fun `a coroutine that yields without end on the loop does not starve calls from other threads`() {
        // The loop queues its own dispatches apart from other threads' (no atomic operation); they must still
        // take turns, or this call would wait for ever behind the yielding coroutine.
        val spinner = loop.launch { while (true) yield() }
        try {
            repeatRounds(200) { round -> assertEquals(round, loop.runSync(10.seconds) { yield(); round }) }
        } finally {
            spinner.cancel()
        }
    }
}
