package io.corobridge.core

import java.io.IOException
import java.util.concurrent.CancellationException
import java.util.concurrent.CountDownLatch
import java.util.concurrent.CyclicBarrier
import java.util.concurrent.TimeoutException
import java.util.concurrent.atomic.AtomicBoolean
import java.util.concurrent.atomic.AtomicReference
import kotlin.concurrent.thread
import kotlin.coroutines.Continuation
import kotlin.coroutines.coroutineContext
import kotlin.coroutines.intrinsics.COROUTINE_SUSPENDED
import kotlin.coroutines.intrinsics.startCoroutineUninterceptedOrReturn
import kotlin.coroutines.resume
import kotlin.time.Duration.Companion.milliseconds
import kotlinx.coroutines.CompletableDeferred
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.Job
import kotlinx.coroutines.NonCancellable
import kotlinx.coroutines.awaitCancellation
import kotlinx.coroutines.launch
import kotlinx.coroutines.withContext
import kotlinx.coroutines.yield
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertInstanceOf
import org.junit.jupiter.api.Assertions.assertNotSame
import org.junit.jupiter.api.Assertions.assertSame
import org.junit.jupiter.api.Assertions.assertThrows
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.extension.RegisterExtension

/** [RunOn.CALLER_THREAD]: the call runs on its caller's thread, and keeps every other promise of runSync. */
class RunOnTest {
    @JvmField
    @RegisterExtension
    val loops = TestLoops()
    private val loop = loops.create("caller")

    @Test
    fun `every step runs on the calling thread, also after a resumption from another thread`() {
        val me = Thread.currentThread()
        val threads = loop.runSync(RunOn.CALLER_THREAD) {
            val first = Thread.currentThread()
            yield()
            val afterYield = Thread.currentThread()
            val io = withContext(Dispatchers.IO) { Thread.currentThread() }
            val afterIo = Thread.currentThread()
            listOf(first, afterYield, io, afterIo)
        }
        assertSame(me, threads[0])
        assertSame(me, threads[1])
        assertNotSame(me, threads[2])
        assertSame(me, threads[3], "the resumption from Dispatchers.IO came back to the caller, not the loop")
        assertTrue(liveThreads("corobridge-loop-caller").isEmpty(), "a call on the caller's thread needs no loop thread")
    }

    @Test
    fun `a continuation resumed by a plain thread wakes the caller, and a loop-dispatched block still runs on the loop`() {
        repeatRounds(200) {
            val resumedElsewhere = object : SuspendCall<String> {
                override fun invoke(continuation: Continuation<String>): Any {
                    thread(name = "resumer") { continuation.resume("resumed") }
                    return COROUTINE_SUSPENDED
                }
            }
            assertEquals("resumed", loop.runSync(RunOn.CALLER_THREAD, resumedElsewhere))
        }
        val onLoop = loop.runSync(RunOn.CALLER_THREAD) { withContext(loop.dispatcher) { Thread.currentThread().name } }
        assertEquals("corobridge-loop-caller", onLoop)
    }

    @Test
    fun `exceptions cross unchanged, checked ones included, with the caller's frames attached`() {
        val checked = IOException("disk gone")
        val thrown = assertThrows(IOException::class.java) {
            loop.runSync<Unit>(RunOn.CALLER_THREAD) { withContext(Dispatchers.IO) { yield() }; throw checked }
        }
        assertSame(checked, thrown)
        assertTrue(thrown.suppressed.any { it is CalledFrom }, thrown.suppressed.toList().toString())
        val unchecked = IllegalArgumentException("bad")
        assertSame(unchecked, assertThrows(IllegalArgumentException::class.java) {
            loop.runSync<Unit>(RunOn.CALLER_THREAD) { throw unchecked }
        })
    }

    @Test
    fun `an interrupt cancels the call and returns after its finally block, with the flag set again`() {
        assertInterruptCancelsAndWaitsForFinally(loop, rounds = 20, runOn = RunOn.CALLER_THREAD)
    }

    @Test
    fun `a timeout cancels the call and throws TimeoutException once it has finished cancelling`() {
        val finallyRan = AtomicBoolean()
        val thrown = assertThrows(TimeoutException::class.java) {
            loop.runSync(RunOn.CALLER_THREAD, java.time.Duration.ofMillis(50), object : SuspendCall<Unit> {
                override fun invoke(continuation: Continuation<Unit>): Any? {
                    val body: suspend () -> Unit = {
                        try {
                            awaitCancellation()
                        } finally {
                            finallyRan.set(true)
                        }
                    }
                    return body.startCoroutineUninterceptedOrReturn(continuation)
                }
            })
        }
        assertTrue(thrown.message!!.contains("did not complete within PT0.05S"), thrown.message)
        assertTrue(finallyRan.get())
        assertThrows(TimeoutException::class.java) {
            loop.runSync(RunOn.CALLER_THREAD, 20.milliseconds) { awaitCancellation() }
        }
        assertThrows(IllegalArgumentException::class.java) {
            loop.runSync(RunOn.CALLER_THREAD, java.time.Duration.ZERO, object : SuspendCall<Unit> {
                override fun invoke(continuation: Continuation<Unit>): Any = Unit
            })
        }
    }

    @Test
    fun `on the loop thread the re-entry policy applies, never a deadlock`() {
        loop.reentryPolicy = ReentryPolicy.FAIL
        val refused = loop.runSync {
            runCatching { loop.runSync(RunOn.CALLER_THREAD) { yield(); "ran" } }.exceptionOrNull()
        }
        assertInstanceOf(IllegalStateException::class.java, refused)
        assertTrue(refused!!.message!!.contains("would deadlock"), refused.message)

        loop.reentryPolicy = ReentryPolicy.NEW_THREAD
        LogCapture().use {
            val where = loop.runSync { loop.runSync(RunOn.CALLER_THREAD) { yield(); Thread.currentThread().name } }
            assertTrue(where.startsWith("corobridge-loop-caller-reentry-"), where)
        }
    }

    @Test
    fun `closing the loop cancels a call in flight and refuses new ones`() {
        // The close races the call's first step: the loop never ran a task, and must still wait for the call.
        repeatRounds(20) {
            val closing = RunSyncLoop.create("caller-close")
            val started = CountDownLatch(1)
            val thrown = AtomicReference<Throwable>()
            val caller = thread {
                try {
                    closing.runSync(RunOn.CALLER_THREAD) {
                        started.countDown()
                        awaitCancellation()
                    }
                } catch (e: Throwable) {
                    thrown.set(e)
                }
            }
            started.await()
            // Closing reaches the call through the loop's own set, not the supervisor's child list, which every
            // caller-thread call would otherwise contend on (benchmarks' CallerScale).
            assertEquals(0, closing.supervisorJob.children.count(), "the call is not a child of the supervisor")
            closing.close()
            caller.join()
            assertInstanceOf(CancellationException::class.java, thrown.get())
            assertTrue(thrown.get().message!!.contains("closed"), thrown.get().message)
            val refused = assertThrows(IllegalStateException::class.java) {
                closing.runSync(RunOn.CALLER_THREAD) { "never" }.length
            }
            assertTrue(refused.message!!.contains("closed"), refused.message)
            assertNoThreads("corobridge-loop-caller-close")
        }
    }

    @Test
    fun `a call that ignores the close is abandoned after the grace period, and its caller hears why`() {
        val closing = RunSyncLoop.create("caller-stubborn")
        closing.closing.closeGraceNanos = java.util.concurrent.TimeUnit.MILLISECONDS.toNanos(300)
        val started = CountDownLatch(1)
        val gate = CompletableDeferred<Unit>()
        val thrown = AtomicReference<Throwable>()
        val caller = thread {
            try {
                closing.runSync(RunOn.CALLER_THREAD) {
                    withContext(NonCancellable) {
                        started.countDown()
                        gate.await()
                    }
                }
            } catch (e: Throwable) {
                thrown.set(e)
            }
        }
        started.await()
        closing.close()
        caller.join()
        assertInstanceOf(IllegalStateException::class.java, thrown.get())
        assertTrue(thrown.get().message!!.contains("closed before the call finished"), thrown.get().message)
        gate.complete(Unit) // the abandoned coroutine ends on Dispatchers.IO
        assertNoThreads("corobridge-loop-caller-stubborn")
    }

    @Test
    fun `inside the call code counts as in a coroutine, and the loop counts the call in flight`() {
        assertFalse(RunContext.isInCoroutine)
        assertTrue(loop.runSync(RunOn.CALLER_THREAD) { yield(); RunContext.isInCoroutine })
        assertTrue(loop.runSync(RunOn.CALLER_THREAD) { RunContext.isInCoroutine })
        assertFalse(RunContext.isInCoroutine)
        assertEquals(1, loop.runSync(RunOn.CALLER_THREAD) { loop.stats().callsInFlight })
        assertEquals(0, loop.stats().callsInFlight)
    }

    @Test
    fun `a coroutine that outlives its call goes on on the loop thread`() {
        val gate = CompletableDeferred<Unit>()
        val ranOn = CompletableDeferred<RunSyncLoop?>()
        val escaped = loop.runSync(RunOn.CALLER_THREAD) {
            // A scope of its own with the call's dispatcher: not a child, so the call does not wait for it.
            CoroutineScope(coroutineContext.minusKey(Job)).launch {
                gate.await()
                ranOn.complete(RunContext.currentLoop)
            }
        }
        gate.complete(Unit)
        assertSame(loop, loop.runSync { ranOn.await() }, "the escaped coroutine ran on the loop's own thread")
        loop.runSync { escaped.join() }
    }

    @Test
    fun `many callers at once each get their own answer`() {
        val callers = 8
        val barrier = CyclicBarrier(callers)
        val failures = AtomicReference<Throwable>()
        val threads = (0 until callers).map { id ->
            thread(name = "caller-$id") {
                try {
                    barrier.await()
                    repeat(2_000) { i ->
                        val got = loop.runSync(RunOn.CALLER_THREAD) {
                            yield()
                            val mid = withContext(Dispatchers.IO) { id * 100_000 + i }
                            check(Thread.currentThread().name == "caller-$id") { "resumed on ${Thread.currentThread().name}" }
                            mid
                        }
                        check(got == id * 100_000 + i) { "caller $id call $i got $got" }
                    }
                } catch (e: Throwable) {
                    failures.compareAndSet(null, e)
                }
            }
        }
        threads.forEach { it.join() }
        failures.get()?.let { throw it }
    }
}
