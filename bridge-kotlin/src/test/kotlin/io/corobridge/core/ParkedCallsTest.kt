package io.corobridge.core

import io.corobridge.core.internal.BlockingCall
import io.corobridge.core.internal.ParkedCalls
import java.lang.management.ManagementFactory
import java.util.concurrent.CancellationException
import java.util.concurrent.CountDownLatch
import java.util.concurrent.TimeUnit
import java.util.concurrent.atomic.AtomicReference
import java.util.concurrent.atomic.AtomicReferenceArray
import kotlin.concurrent.thread
import kotlinx.coroutines.currentCoroutineContext
import kotlinx.coroutines.isActive
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertInstanceOf
import org.junit.jupiter.api.Assertions.assertThrows
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Assumptions.assumeTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.extension.RegisterExtension

/**
 * A caller that parks to wait for its call puts the call in the loop's parked calls (ParkedCalls), a fixed array
 * of slots, rather than making it a child of the supervisor: parking then allocates nothing, and closing still
 * cancels the call and, if the loop's thread is stuck, releases the caller wherever the call is (running, queued
 * behind the stuck task). When no slot is free the call joins the supervisor, as every parked call once did.
 */
class ParkedCallsTest {
    @JvmField
    @RegisterExtension
    val loops = TestLoops()

    /** A loop whose callers park at once, with close's budgets shortened to 300 ms (stuck after 0.5 s). */
    private fun parkingLoop(name: String): RunSyncLoop = loops.create(name).also {
        it.waitStrategy = WaitStrategy.PARK
        it.stallThreshold = null // the tests hold the loop thread on purpose
        it.closing.closeGraceNanos = TimeUnit.MILLISECONDS.toNanos(300)
        it.closing.callbacksBudgetNanos = TimeUnit.MILLISECONDS.toNanos(300)
    }

    @Test
    fun `a call whose caller parks allocates no more than one whose caller spins`() {
        val threads = ManagementFactory.getThreadMXBean() as? com.sun.management.ThreadMXBean
        assumeTrue(threads != null && threads.isThreadAllocatedMemorySupported, "no per-thread allocation counter")
        assumeTrue(Runtime.getRuntime().availableProcessors() > 1, "on one processor callers never spin")
        threads!!.isThreadAllocatedMemoryEnabled = true
        // Compared in the same JVM rather than against a constant, which is WatchdogTest's (a call after a JFR
        // recording): here only the way the caller waits differs.
        val parked = bytesPerCall(threads, parkingLoop("parked-bytes"))
        // Callers and the loop spin for up to a second: the answer comes while the caller spins.
        val spinning = loops.create("spinning-bytes").also {
            it.waitStrategy = WaitStrategy.adaptive(java.time.Duration.ofSeconds(1), java.time.Duration.ofSeconds(1))
        }
        val spun = bytesPerCall(threads, spinning)
        // A parked caller's call joining the supervisor cost about 30 bytes more (93-95 against 64).
        assertTrue(parked <= spun + 2.0, "a call whose caller parked allocated $parked bytes, one whose caller spun $spun")
    }

    /**
     * The bytes one call of an immediate body allocates on the caller's and the loop's threads, over the best of
     * three rounds after a warm-up (compiled, the JIT's escape analysis applies as in production; a round may
     * include a compilation or an allocation of the loop's that has nothing to do with the calls).
     */
    private fun bytesPerCall(threads: com.sun.management.ThreadMXBean, loop: RunSyncLoop): Double {
        val answer = Any()
        // A body that answers at once and allocates nothing itself (a suspend lambda makes a continuation per run).
        val immediate = object : SuspendCall<Any> {
            override fun invoke(continuation: kotlin.coroutines.Continuation<Any>): Any = answer
        }
        val loopThread = loop.runSync { Thread.currentThread() }
        repeat(30_000) { loop.runSync(immediate) }
        val calls = 20_000
        val bytes = (1..3).minOf {
            val loopBefore = threads.getThreadAllocatedBytes(loopThread.id)
            val callerBefore = threads.currentThreadAllocatedBytes
            repeat(calls) { check(loop.runSync(immediate) === answer) }
            val callerBytes = threads.currentThreadAllocatedBytes - callerBefore
            (callerBytes + threads.getThreadAllocatedBytes(loopThread.id) - loopBefore) / calls.toDouble()
        }
        assertEquals(0, loop.closing.parkedCalls.count, "every parked caller emptied its slot")
        return bytes
    }

    @Test
    fun `a stuck close releases the parked callers of the stuck call and of the calls taken with it`() {
        repeatRounds(3) {
            val loop = parkingLoop("parked-stuck")
            // A first call holds the loop while the others queue, so that the loop then takes them in one batch: the
            // stuck call first, the others behind it, where no one but the loop thread can reach them.
            val gate = CountDownLatch(1)
            val holding = CountDownLatch(1)
            val first = thread(name = "parked-stuck-first") { loop.runSync { holding.countDown(); gate.await(30, TimeUnit.SECONDS) } }
            check(holding.await(10, TimeUnit.SECONDS))
            val entered = CountDownLatch(1)
            val release = CountDownLatch(1)
            val thrown = AtomicReferenceArray<Throwable>(5)
            val callers = (0 until 5).map { i ->
                thread(name = "parked-stuck-caller-$i") {
                    try {
                        if (i == 0) {
                            loop.runSync { entered.countDown(); release.await(30, TimeUnit.SECONDS) }
                        } else {
                            loop.runSync { "taken behind the stuck task" }
                        }
                    } catch (e: Throwable) {
                        thrown.set(i, e)
                    }
                }.also(::awaitParkedInSync) // one by one: the stuck call is queued first
            }
            gate.countDown()
            first.join(10_000)
            check(entered.await(10, TimeUnit.SECONDS))
            assertEquals(5, loop.closing.parkedCalls.count, "every parked caller's call has a slot")
            assertTrue(loop.supervisorJob.children.none(), "no parked call joined the supervisor")
            loop.close(java.time.Duration.ofMillis(200))
            callers.forEach { it.join(10_000) }
            for (i in 0 until 5) {
                val e = thrown.get(i)
                assertInstanceOf(IllegalStateException::class.java, e, "caller $i")
                assertTrue(e.message!!.contains("stuck in a task"), e.message)
            }
            assertEquals(0, loop.closing.parkedCalls.count)
            release.countDown()
            awaitState("the loop thread ends once its task returns") { liveThreads("corobridge-loop-parked-stuck").isEmpty() }
        }
    }

    @Test
    fun `close cancels the call of a parked caller while the call runs on the loop thread`() {
        repeatRounds(3) {
            val loop = parkingLoop("parked-running")
            val entered = CountDownLatch(1)
            val thrown = AtomicReference<Throwable>()
            val caller = thread(name = "parked-running-caller") {
                try {
                    loop.runSync {
                        entered.countDown()
                        // Holds the loop thread without suspending, until the call is cancelled.
                        while (currentCoroutineContext().isActive) Thread.onSpinWait()
                        "left the loop"
                    }
                } catch (e: Throwable) {
                    thrown.set(e)
                }
            }
            check(entered.await(10, TimeUnit.SECONDS))
            awaitParkedInSync(caller)
            loop.close()
            caller.join(10_000)
            // Not cancelled, the body would hold the thread until the stuck deadline and the caller would be
            // released with an IllegalStateException instead.
            val e = assertInstanceOf(CancellationException::class.java, thrown.get())
            assertTrue(e.message!!.contains("closed"), e.message)
        }
    }

    @Test
    fun `a parked caller that finds no free slot joins the supervisor and is still released`() {
        val loop = parkingLoop("parked-full")
        val filler = BlockingCall<Any>(loop, suspend { "never submitted" })
        for (hash in 0 until ParkedCalls.DEFAULT_CAPACITY) check(loop.closing.parkedCalls.add(filler, hash) >= 0)
        val entered = CountDownLatch(1)
        val release = CountDownLatch(1)
        val thrown = AtomicReference<Throwable>()
        val caller = thread(name = "parked-full-caller") {
            try {
                loop.runSync { entered.countDown(); release.await(30, TimeUnit.SECONDS) }
            } catch (e: Throwable) {
                thrown.set(e)
            }
        }
        check(entered.await(10, TimeUnit.SECONDS))
        awaitParkedInSync(caller)
        assertEquals(1, loop.supervisorJob.children.count(), "the call joined the supervisor")
        loop.close(java.time.Duration.ofMillis(200))
        caller.join(10_000)
        val e = assertInstanceOf(IllegalStateException::class.java, thrown.get())
        assertTrue(e.message!!.contains("stuck in a task"), e.message)
        release.countDown()
        awaitState("the loop thread ends once its task returns") { liveThreads("corobridge-loop-parked-full").isEmpty() }
    }

    @Test
    fun `slots are taken from the hash on, given back, and refused when all probed are taken`() {
        val loop = loops.create("parked-slots")
        val calls = ParkedCalls(ParkedCalls.PROBES)
        val call = BlockingCall<Any>(loop, suspend { "never submitted" })
        val taken = (0 until ParkedCalls.PROBES).map { calls.add(call, 5) }
        assertEquals((0 until ParkedCalls.PROBES).map { (5 + it) % ParkedCalls.PROBES }, taken)
        assertEquals(-1, calls.add(call, 5))
        calls.remove(taken[3])
        assertEquals(taken[3], calls.add(call, 0))
        val bad = assertThrows(IllegalArgumentException::class.java) { ParkedCalls(12) }
        assertEquals("capacity must be a power of two of at least 8, was 12", bad.message)
    }
}
