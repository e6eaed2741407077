package io.corobridge.core

import java.time.Duration
import java.util.concurrent.TimeUnit
import java.util.concurrent.TimeoutException
import java.util.concurrent.atomic.AtomicBoolean
import java.util.concurrent.atomic.AtomicInteger
import kotlin.concurrent.thread
import kotlin.time.Duration.Companion.milliseconds
import io.corobridge.core.internal.Spinning
import kotlinx.coroutines.CompletableDeferred
import kotlinx.coroutines.awaitCancellation
import kotlinx.coroutines.yield
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertSame
import org.junit.jupiter.api.Assertions.assertThrows
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Assertions.fail
import org.junit.jupiter.api.Assumptions.assumeTrue
import org.junit.jupiter.params.ParameterizedTest
import org.junit.jupiter.params.provider.ValueSource
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.extension.RegisterExtension

/** The hand-off behaves the same whether the two sides spin first or park at once. */
class WaitStrategyTest {
    private fun strategy(name: String) = when (name) {
        "PARK" -> WaitStrategy.PARK
        "ADAPTIVE" -> WaitStrategy.ADAPTIVE
        "LONG_SPIN" -> WaitStrategy.adaptive(Duration.ofMillis(5), Duration.ofMillis(5))
        else -> error(name)
    }

    @JvmField
    @RegisterExtension
    val loops = TestLoops()

    private inline fun <R> withLoop(strategyName: String, block: (RunSyncLoop) -> R): R {
        val loop = loops.create("wait-$strategyName")
        loop.waitStrategy = strategy(strategyName)
        return block(loop)
    }

    @ParameterizedTest
    @ValueSource(strings = ["PARK", "ADAPTIVE", "LONG_SPIN"])
    fun `many callers interleave and all get their results`(name: String) = withLoop(name) { loop ->
        repeatRounds(5) {
            val callers = 50
            val suspended = AtomicInteger()
            val allIn = CompletableDeferred<Unit>()
            val sum = AtomicInteger()
            val threads = List(callers) { i ->
                thread {
                    repeat(20) { n ->
                        sum.addAndGet(loop.runSync {
                            if (n == 0 && suspended.incrementAndGet() == callers) allIn.complete(Unit)
                            if (n == 0) allIn.await() else yield()
                            i
                        })
                    }
                }
            }
            threads.forEach { it.join() }
            assertEquals(20 * (0 until callers).sum(), sum.get())
        }
    }

    @ParameterizedTest
    @ValueSource(strings = ["PARK", "ADAPTIVE", "LONG_SPIN"])
    fun `interrupts and timeouts cancel the call and wait for its finally`(name: String) = withLoop(name) { loop ->
        assertInterruptCancelsAndWaitsForFinally(loop, rounds = 10)
        val bodyStarted = AtomicBoolean()
        val finallyDone = AtomicBoolean()
        assertThrows(TimeoutException::class.java) {
            loop.runSync(5.milliseconds) {
                try {
                    bodyStarted.set(true)
                    awaitCancellation()
                } finally {
                    finallyDone.set(true)
                }
            }
        }
        // On a loaded machine the call may still be queued at the deadline: then it never starts (by design).
        // Either way nothing of it outlives the call: its finally ran if and only if its body started.
        assertEquals(bodyStarted.get(), finallyDone.get())
    }

    @ParameterizedTest
    @ValueSource(strings = ["PARK", "ADAPTIVE", "LONG_SPIN"])
    fun `a call whose value is a thread returns it, even the parked caller's own`(name: String) = withLoop(name) { loop ->
        // A parked caller announces itself by storing its Thread where the outcome goes; a value that is a
        // Thread must still be told apart from that announcement, above all the caller's own Thread.
        repeatRounds(10) {
            val caller = Thread.currentThread()
            val gate = CompletableDeferred<Unit>()
            val opener = thread(name = "wait-gate-opener") {
                awaitParkedInSync(caller)
                gate.complete(Unit)
            }
            try {
                assertSame(caller, loop.runSync { gate.await(); caller })
                assertSame(loop.thread, loop.runSync { Thread.currentThread() })
            } finally {
                opener.join()
            }
        }
    }

    @ParameterizedTest
    @ValueSource(strings = ["PARK", "ADAPTIVE"])
    fun `an idle loop parks once its spin time has passed`(name: String) = withLoop(name) { loop ->
        repeatRounds(5) {
            loop.runSync { yield() }
            // No latch can say "the loop has parked", so wait for the thread state, with a deadline.
            val deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10)
            while (loop.thread.state != Thread.State.WAITING) {
                if (System.nanoTime() > deadline) fail<Unit>("the idle loop never parked: ${loop.thread.state}")
                Thread.onSpinWait()
            }
            val stack = loop.thread.stackTrace
            assertTrue(stack.any { it.methodName == "park" }, "parked in LockSupport.park: ${stack.toList()}")
        }
    }

    @Test
    fun `callers stop spinning while spins keep missing, probe now and then, and spin again after a hit`() {
        assumeTrue(Spinning.processorsForCallers > 0, "callers never spin on one processor")
        RunSyncLoop.create("wait-misses").use { loop ->
            // Calls that answer only after their caller has parked: every spin before them missed.
            repeat(Spinning.MISSES_TO_PAUSE) { n ->
                val gate = CompletableDeferred<Int>()
                var answer = -1
                val caller = thread(name = "wait-misses-caller") { answer = loop.runSync { gate.await() } }
                awaitState("the caller parked") { caller.state == Thread.State.WAITING }
                gate.complete(n)
                caller.join()
                assertEquals(n, answer)
            }
            assertEquals(Spinning.MISSES_TO_PAUSE, loop.spinMisses, "each missed spin was counted")

            // Paused: a wait checks its condition once and parks, except the occasional probe, which spins.
            val waits = 256
            var spun = 0
            repeat(waits) {
                var checks = 0
                Spinning.spinUntil(loop) { checks++; false }
                if (checks > 1) spun++
            }
            assertTrue(spun < waits / 4, "only probes spin while paused ($spun of $waits spun)")
            assertEquals(Spinning.MISSES_TO_PAUSE, loop.spinMisses, "probes that miss keep the pause")

            // A probe that gets its answer while spinning ends the pause.
            var tries = 0
            while (loop.spinMisses != 0) {
                assertTrue(++tries < 10_000, "no probe in $tries waits")
                var checks = 0
                Spinning.spinUntil(loop) { ++checks > 3 }
            }
            var checks = 0
            Spinning.spinUntil(loop) { ++checks > 3 }
            assertEquals(4, checks, "spinning again after a hit")
            assertEquals(42, loop.runSync { 42 })
        }
    }

    @Test
    fun `the idle loop stops spinning while its spins find no work, probes now and then, and spins again after a hit`() {
        assumeTrue(Spinning.processorsForCallers > 0, "on one processor a probe meets a call only by chance")
        RunSyncLoop.create("wait-loop-misses").use { loop ->
            val thread = loop.thread
            // One call at a time, each after the loop has parked: every idle spin before parking found nothing.
            fun callThenLetTheLoopPark() {
                assertEquals(7, loop.runSync { 7 })
                awaitState("the loop parked") { thread.state == Thread.State.WAITING }
            }
            repeat(Spinning.MISSES_TO_PAUSE) { callThenLetTheLoopPark() }
            assertEquals(Spinning.MISSES_TO_PAUSE, thread.spinMisses, "each idle spin that found nothing was counted")

            // Paused: the loop parks at once, except on every 16th idle turn, which spins and misses.
            val spinsBefore = thread.spinsBegun
            val idles = 4 * Spinning.PROBE_ONE_IN
            repeat(idles) { callThenLetTheLoopPark() }
            val spun = thread.spinsBegun - spinsBefore
            // A spurious wake-up of the parked loop adds an idle turn, so allow a few probes more than 4.
            assertTrue(spun in 4..8, "only probes spin while paused: $spun of $idles idle turns spun")
            assertEquals(Spinning.MISSES_TO_PAUSE, thread.spinMisses, "probes that find nothing keep the pause")

            // Calls one after another: a probe meets the next call while spinning, and spinning resumes.
            var calls = 0
            while (thread.spinMisses != 0) {
                assertTrue(++calls < 100_000, "no probe met a call in $calls calls in a row")
                assertEquals(calls, loop.runSync { calls })
            }
            // Not paused any more: the idle turn after the next call spins (and, with nothing to find, misses).
            awaitState("the loop parked") { thread.state == Thread.State.WAITING }
            val resumed = thread.spinsBegun
            callThenLetTheLoopPark()
            val spunAfter = thread.spinsBegun - resumed
            assertTrue(spunAfter in 1..2, "the loop spins when idle again ($spunAfter spins in one idle turn)")
        }
    }

    @Test
    fun `where the JVM counts one processor the idle loop still spins, and pauses`() {
        // A JVM that counts one processor on a host with more, as under a container's CPU quota of one: callers
        // and loop still run side by side, and a loop that parked at once would make every call pay two
        // wake-ups (about 40 us a call against 1-3 us on this project's 2-core machines). Its spin pauses after
        // 8 misses, as anywhere: 12 calls that each let it park begin 8 idle spins (a probe comes at the 16th).
        val child = runChildJvm(OneProcessorProbe::class.java, "-XX:ActiveProcessorCount=1")
        assertEquals(0, child.exitCode, child.output)
        assertEquals("idle spins ${Spinning.MISSES_TO_PAUSE}", child.output.trim().lines().last(), child.output)
    }

    @Test
    fun `the strategy can be changed while calls run`() {
        RunSyncLoop.create("wait-switch").use { loop ->
            val done = AtomicBoolean()
            val caller = thread { while (!done.get()) loop.runSync { yield() } }
            repeat(200) { i -> loop.waitStrategy = if (i % 2 == 0) WaitStrategy.PARK else WaitStrategy.ADAPTIVE }
            done.set(true)
            caller.join()
            assertSame(WaitStrategy.ADAPTIVE, loop.waitStrategy)
        }
    }

    @Test
    fun `bad spin times are rejected naming the argument`() {
        val negative = assertThrows(IllegalArgumentException::class.java) {
            WaitStrategy.adaptive(Duration.ofNanos(-1), Duration.ZERO)
        }
        assertTrue(negative.message!!.startsWith("callerSpin must be between zero and PT1S"), negative.message)
        val long = assertThrows(IllegalArgumentException::class.java) {
            WaitStrategy.adaptive(Duration.ZERO, Duration.ofSeconds(2))
        }
        assertTrue(long.message!!.startsWith("loopSpin must be between zero and PT1S"), long.message)
        assertEquals(Duration.ofNanos(20_000), WaitStrategy.ADAPTIVE.callerSpin)
        assertEquals(Duration.ZERO, WaitStrategy.PARK.loopSpin)
    }
}

/** Waits (with a deadline) until [caller] is parked inside a blocking call, not merely spinning. */
internal fun awaitParkedInSync(caller: Thread) {
    val deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10)
    while (true) {
        val parked = caller.state == Thread.State.WAITING &&
            caller.stackTrace.any { it.className.endsWith("BlockingCall") && it.methodName == "await" }
        if (parked) return
        if (System.nanoTime() > deadline) fail<Unit>("the caller never parked in a blocking call: ${caller.state}")
        Thread.onSpinWait()
    }
}

/** Run in a JVM that counts one processor: calls that each let the loop park, then the idle spins it began. */
object OneProcessorProbe {
    @JvmStatic
    fun main(args: Array<String>) {
        check(Runtime.getRuntime().availableProcessors() == 1) { "the JVM sees more than one processor" }
        RunSyncLoop.create("one-processor").use { loop ->
            val thread = loop.thread
            repeat(Spinning.MISSES_TO_PAUSE + 4) { i ->
                check(loop.runSync { i } == i)
                awaitState("the loop parked") { thread.state == Thread.State.WAITING }
            }
            println("idle spins ${thread.spinsBegun}")
        }
    }
}
