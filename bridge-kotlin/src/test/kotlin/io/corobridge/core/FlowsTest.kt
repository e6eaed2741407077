package io.corobridge.core

import java.io.IOException
import java.util.Collections
import java.util.concurrent.CountDownLatch
import java.util.concurrent.TimeUnit
import java.util.concurrent.atomic.AtomicInteger
import java.util.concurrent.atomic.AtomicReference
import java.util.logging.Level
import java.util.stream.Stream
import kotlin.concurrent.thread
import kotlin.time.Duration.Companion.seconds
import kotlinx.coroutines.CompletableDeferred
import kotlinx.coroutines.NonCancellable
import kotlinx.coroutines.awaitCancellation
import kotlinx.coroutines.flow.Flow
import kotlinx.coroutines.flow.flow
import kotlinx.coroutines.withContext
import kotlinx.coroutines.yield
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertSame
import org.junit.jupiter.api.Assertions.assertThrows
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.extension.RegisterExtension

/** [stream]: a Kotlin Flow read as a java.util.stream.Stream on the reader's thread. */
class FlowsTest {
    @JvmField
    @RegisterExtension
    val loops = TestLoops()
    private val loop = loops.create("flows")

    /** Emits 0 until [count], counting in [emitted] each emit begun; runs [onFinally] as it ends. */
    private fun counting(count: Int, emitted: AtomicInteger = AtomicInteger(), onFinally: () -> Unit = {}): Flow<Int> = flow {
        try {
            for (i in 0 until count) {
                emitted.incrementAndGet()
                emit(i)
            }
        } finally {
            onFinally()
        }
    }

    /** Emits [first] elements, then waits until cancelled; [finished] opens after its finally block. */
    private fun hanging(first: Int, finished: CountDownLatch): Flow<Int> = flow {
        try {
            repeat(first) { emit(it) }
            awaitCancellation()
        } finally {
            withContext(NonCancellable) {
                repeat(20) { yield() } // a finally that takes some loop turns
                finished.countDown()
            }
        }
    }

    @Test
    fun `elements arrive in order on the reader's thread while the flow runs on the loop`() {
        val flowThreads = Collections.synchronizedSet(HashSet<String>())
        val source = flow {
            repeat(1000) {
                flowThreads.add(Thread.currentThread().name.substringBefore(" @")) // less the coroutine's debug name
                emit(it)
            }
        }
        val readers = HashSet<String>()
        val read = loop.stream(source, buffer = 7).use { stream ->
            stream.peek { readers.add(Thread.currentThread().name) }.toList()
        }
        assertEquals((0 until 1000).toList(), read)
        assertEquals(setOf("corobridge-loop-flows"), flowThreads)
        assertEquals(setOf(Thread.currentThread().name), readers)
    }

    @Test
    fun `no element is lost or doubled and no side waits forever, whichever side is faster`() {
        // Small rings and flows that sometimes suspend: reader and flow keep overtaking each other, so each
        // keeps finding the ring empty or full and announcing that it waits. A lost wake-up hangs a round.
        repeatRounds(200) { round ->
            val count = 1 + round % 97
            val source = flow {
                for (i in 0 until count) {
                    if ((i + round) % 5 == 0) yield()
                    emit(i)
                }
            }
            val read = loop.stream(source, buffer = 1 + round % 4).use { stream ->
                stream.map { if (it % 7 == round % 7) Thread.onSpinWait(); it }.toList()
            }
            assertEquals((0 until count).toList(), read)
        }
    }

    @Test
    fun `the flow runs at most the buffer ahead of a reader that stops reading`() {
        repeatRounds(10) {
            val emitted = AtomicInteger()
            loop.stream(counting(1000, emitted), buffer = 4).use { stream ->
                val iterator = stream.iterator()
                var read = 0
                for (batch in listOf(1, 1, 2, 5, 30)) {
                    repeat(batch) { assertEquals(read++, iterator.next()) }
                    // A call on the loop runs after whatever the reads set going there: the flow is suspended now.
                    loop.runSync { yield() }
                    // The buffer filled, then the reader took some without refilling it past half: it holds 3 or 4,
                    // and one more element waits in emit.
                    val ahead = emitted.get() - read
                    assertTrue(ahead in 3 + 1..4 + 1, "read $read with a buffer of 4, but ${emitted.get()} emitted")
                }
            }
        }
    }

    @Test
    fun `closing after an early exit cancels the flow and returns once its finally blocks have run`() {
        repeatRounds(10) {
            val finished = CountDownLatch(1)
            val first = loop.stream(hanging(5, finished)).use { it.limit(2).toList() }
            assertEquals(listOf(0, 1), first)
            assertEquals(0, finished.count, "the flow's finally ran before close returned")
            val alsoFinished = CountDownLatch(1)
            assertEquals(0, loop.stream(hanging(5, alsoFinished)).use { it.findFirst().orElse(null) })
            assertEquals(0, alsoFinished.count, "findFirst, then close")
        }
    }

    @Test
    fun `a stream never read starts nothing, and closing it is harmless`() {
        val emitted = AtomicInteger()
        val stream = loop.stream(counting(10, emitted))
        stream.close()
        stream.close()
        loop.runSync { yield() }
        assertEquals(0, emitted.get())
    }

    @Test
    fun `reading a closed stream is refused`() {
        val finished = CountDownLatch(1)
        val stream = loop.stream(hanging(3, finished))
        val iterator = stream.iterator()
        assertEquals(0, iterator.next())
        stream.close()
        assertEquals(0, finished.count)
        val refused = assertThrows(IllegalStateException::class.java) { iterator.next() }
        assertEquals("the stream of loop \"flows\" is closed; its flow was cancelled", refused.message)
    }

    @Test
    fun `a failure of the flow reaches the reader unchanged after the elements before it`() {
        val failure = IOException("feed broke")
        val source = flow {
            emit(1)
            emit(2)
            throw failure
        }
        val read = ArrayList<Int>()
        loop.stream(source).use { stream ->
            val thrown = assertThrows(IOException::class.java) { stream.forEach { read.add(it) } }
            assertSame(failure, thrown)
            assertEquals(Thread.currentThread().name, thrown.suppressed.filterIsInstance<CalledFrom>().single().threadName)
        }
        assertEquals(listOf(1, 2), read)
    }

    @Test
    fun `interrupting the reader cancels the flow, waits for it, and keeps the flag`() {
        repeatRounds(5) {
            val finished = CountDownLatch(1)
            val outcome = AtomicReference<Any?>()
            val readOne = CountDownLatch(1)
            val reader = thread(name = "reader") {
                try {
                    loop.stream(hanging(1, finished)).use { stream -> stream.forEach { readOne.countDown() } }
                    outcome.set("ended")
                } catch (e: java.util.concurrent.CancellationException) {
                    outcome.set(listOf(e.message, Thread.currentThread().isInterrupted, finished.count))
                }
            }
            readOne.await() // the flow has started, so it has a finally to run
            awaitBlockedOnStream(reader)
            reader.interrupt()
            reader.join()
            assertEquals(
                listOf("the thread reading a stream of loop \"flows\" was interrupted; the flow was cancelled", true, 0L),
                outcome.get(),
            )
        }
    }

    /** Waits until [reader] is parked in a read of a stream. */
    private fun awaitBlockedOnStream(reader: Thread) {
        val deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10)
        while (true) {
            val waiting = reader.state == Thread.State.WAITING &&
                reader.stackTrace.any { it.className.contains("FlowSource") }
            if (waiting) return
            check(System.nanoTime() < deadline) { "the reader never blocked on the stream: ${reader.state}" }
            Thread.onSpinWait()
        }
    }

    @Test
    fun `closing the loop cancels the flow and the reader is told`() {
        val closing = RunSyncLoop.create("flows-closing")
        val finished = CountDownLatch(1)
        val thrown = AtomicReference<Throwable>()
        val readOne = CountDownLatch(1)
        val reader = thread(name = "reader") {
            try {
                closing.stream(hanging(1, finished)).use { stream -> stream.forEach { readOne.countDown() } }
            } catch (e: Throwable) {
                thrown.set(e)
            }
        }
        readOne.await()
        awaitBlockedOnStream(reader)
        closing.close()
        reader.join()
        val error = thrown.get()
        assertTrue(error is java.util.concurrent.CancellationException, "was $error")
        assertTrue(error.message!!.contains("loop \"flows-closing\" is closing"), error.message)
        assertEquals(0, finished.count)
        val refused = assertThrows(IllegalStateException::class.java) { closing.stream(counting(3)).use { it.toList() } }
        assertTrue(refused.message!!.contains("is closed"), refused.message)
    }

    @Test
    fun `read on the loop thread, the flow runs on a new thread under NEW_THREAD and is refused under FAIL`() {
        LogCapture().use { logs ->
            val (read, flowThread) = loop.runSync {
                var flowThread = ""
                val source = flow {
                    flowThread = Thread.currentThread().name
                    repeat(3) { emit(it) }
                }
                val read = loop.stream(source).use { it.toList() }
                read to flowThread
            }
            assertEquals(listOf(0, 1, 2), read)
            assertTrue(flowThread.startsWith("corobridge-loop-flows-reentry-"), flowThread)
            assertTrue(logs.messages(Level.WARNING).single().contains("a read of a stream of loop \"flows\""))
        }
        loop.reentryPolicy = ReentryPolicy.FAIL
        val refused = assertThrows(IllegalStateException::class.java) {
            loop.runSync { loop.stream(counting(3)).use { it.toList() } }
        }
        assertTrue(refused.message!!.contains("would deadlock"), refused.message)
    }

    @Test
    fun `a reader on a worker thread lends its slot, so a flow that needs a worker still runs`() {
        loop.workerLimit = 1
        val source = flow {
            repeat(3) { emit(loop.runInWorkerThread { it * 10 }) }
        }
        val read = loop.runSync(10.seconds) {
            loop.runInWorkerThread { loop.stream(source, buffer = 1).use { it.toList() } }
        }
        assertEquals(listOf(0, 10, 20), read)
    }

    @Test
    fun `a stream dropped without closing is cancelled once collected as garbage`() {
        val finished = CountDownLatch(1)
        readOneAndDrop(hanging(2, finished))
        var rounds = 0
        while (!finished.await(50, TimeUnit.MILLISECONDS)) {
            System.gc()
            check(++rounds < 200) { "the dropped stream's flow was never cancelled" }
        }
    }

    private fun readOneAndDrop(source: Flow<Int>) {
        val stream: Stream<Int> = loop.stream(source)
        assertEquals(0, stream.iterator().next())
    }

    @Test
    fun `bad input is refused where it is given`() {
        val error = assertThrows(IllegalArgumentException::class.java) { loop.stream(counting(1), buffer = 0) }
        assertEquals("buffer must be at least 1, was 0", error.message)
        assertFalse(loop.isClosed)
    }
}
