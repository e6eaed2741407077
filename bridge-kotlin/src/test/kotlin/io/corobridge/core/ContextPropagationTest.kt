package io.corobridge.core

import java.util.concurrent.CompletableFuture
import java.util.concurrent.ConcurrentHashMap
import java.util.concurrent.CyclicBarrier
import java.util.concurrent.atomic.AtomicInteger
import java.util.concurrent.atomic.AtomicReference
import java.util.logging.Level
import kotlin.concurrent.thread
import kotlin.coroutines.EmptyCoroutineContext
import kotlinx.coroutines.CompletableDeferred
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.async
import kotlinx.coroutines.launch
import kotlinx.coroutines.withContext
import kotlinx.coroutines.yield
import org.junit.jupiter.api.AfterEach
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertNull
import org.junit.jupiter.api.Assertions.assertSame
import org.junit.jupiter.api.Assertions.assertThrows
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.extension.RegisterExtension

/**
 * A thread-local that also records, per thread, the last value each thread set or removed, so a test can see
 * what a loop, worker or helper thread was left holding after it ran calls.
 */
private class RecordedThreadLocal : ThreadLocal<String?>() {
    val lastWritten = ConcurrentHashMap<Thread, String>()

    override fun set(value: String?) {
        super.set(value)
        lastWritten[Thread.currentThread()] = value ?: NONE
    }

    override fun remove() {
        super.remove()
        lastWritten[Thread.currentThread()] = NONE
    }

    companion object {
        const val NONE = "<none>"
    }
}

class ContextPropagationTest {
    @JvmField
    @RegisterExtension
    val loops = TestLoops()
    private val loop = loops.create("context")
    private val requestId = RecordedThreadLocal()
    private val carrier = ContextCarrier.of(requestId)

    @AfterEach
    fun cleanUp() {
        ContextPropagation.unregister(carrier)
    }

    /** Reads this test's thread-local on the loop thread in a task of its own, which carries nothing. */
    private fun valueOnIdleLoopThread(): String? {
        val seen = CompletableFuture<String?>()
        loop.dispatcher.dispatch(EmptyCoroutineContext, Runnable { seen.complete(requestId.get()) })
        return seen.get()
    }

    @Test
    fun `100 concurrent callers each see their own value on the loop, on a worker and on a new thread`() {
        ContextPropagation.register(carrier)
        val callers = 100
        val inFlight = AtomicInteger()
        val allSuspended = CompletableDeferred<Unit>()
        val start = CyclicBarrier(callers)
        val seen = ConcurrentHashMap<String, List<String?>>()
        val failures = ConcurrentHashMap<String, Throwable>()
        val threads = (1..callers).map { n ->
            thread(name = "caller-$n") {
                val mine = "request-$n"
                try {
                    requestId.set(mine)
                    start.await()
                    seen[mine] = loop.runSync {
                        val first = requestId.get()
                        // Every caller's coroutine is suspended here at once before any goes on, so the loop
                        // thread has run all 100 first steps interleaved when the second steps begin.
                        if (inFlight.incrementAndGet() == callers) allSuspended.complete(Unit)
                        allSuspended.await()
                        val afterResume = requestId.get()
                        val onWorker = runInWorkerThread { requestId.get() }
                        val onNewThread = loop.runSync { requestId.get() } // re-entry: a new thread
                        yield()
                        listOf(first, afterResume, onWorker, onNewThread, requestId.get())
                    }
                } catch (e: Throwable) {
                    failures[mine] = e
                }
            }
        }
        LogCapture().use { threads.forEach { it.join() } } // the re-entry warning is expected, not printed
        assertTrue(failures.isEmpty(), "failures: $failures")
        assertEquals(callers, seen.size)
        for ((mine, values) in seen) assertEquals(List(5) { mine }, values, "what $mine saw")
        assertEquals(callers, inFlight.get())
    }

    @Test
    fun `values are restored afterwards on the loop thread, worker threads and new threads`() {
        ContextPropagation.register(carrier)
        requestId.set("outer")
        try {
            LogCapture().use {
                repeat(20) {
                    loop.runSync {
                        runInWorkerThread { requestId.get() }
                        loop.runSync { yield() } // a new thread, with a loop of its own
                        yield()
                    }
                }
            }
        } finally {
            requestId.remove()
        }
        assertNull(valueOnIdleLoopThread(), "nothing left on the loop thread")
        val others = requestId.lastWritten.filterKeys { it !== Thread.currentThread() }
        assertTrue(others.keys.any { it.name.startsWith("corobridge-worker-context") }, "a worker ran: $others")
        assertTrue(others.keys.any { it.name.contains("-reentry-") }, "a new thread ran: $others")
        for ((thread, last) in others) {
            assertEquals(RecordedThreadLocal.NONE, last, "thread \"${thread.name}\" was left holding $last")
        }
    }

    @Test
    fun `futures, background tasks and gather groups carry the caller's values too`() {
        ContextPropagation.register(carrier)
        requestId.set("from-java")
        try {
            assertEquals("from-java", loop.runAsync { yield(); requestId.get() }.get())
            val launched = CompletableFuture<String?>()
            loop.launch { yield(); launched.complete(requestId.get()) }
            assertEquals("from-java", launched.get())
            val group = loop.openGather<String?>()
            val handle = group.fork { yield(); requestId.get() }
            loop.runSync { group.join() }
            assertEquals("from-java", handle.get())
            val gathered = loop.runSync { gather(listOf<suspend () -> String?>({ yield(); requestId.get() })) }
            assertEquals(listOf("from-java"), gathered)
        } finally {
            requestId.remove()
        }
    }

    @Test
    fun `children on other dispatchers inherit the values, and capture() carries them into any coroutine`() {
        ContextPropagation.register(carrier)
        requestId.set("inherited")
        try {
            val onDefault = loop.runSync {
                withContext(Dispatchers.Default) { Thread.currentThread().name to requestId.get() }
            }
            assertFalse(onDefault.first.startsWith("corobridge"), onDefault.first)
            assertEquals("inherited", onDefault.second)
            val launched = CompletableFuture<String?>()
            loop.scope.launch(ContextPropagation.capture()) { yield(); launched.complete(requestId.get()) }
            assertEquals("inherited", launched.get())
            val plain = CompletableFuture<String?>()
            loop.scope.launch { plain.complete(requestId.get()) }
            assertNull(plain.get(), "a coroutine launched without capture() carries nothing")
        } finally {
            requestId.remove()
        }
    }

    @Test
    fun `without a registered carrier nothing is carried, and capture() is empty`() {
        requestId.set("not-registered")
        try {
            assertNull(loop.runSync { requestId.get() })
            assertSame(EmptyCoroutineContext, ContextPropagation.capture())
        } finally {
            requestId.remove()
        }
    }

    @Test
    fun `registration is idempotent, equal carriers count once, and unregistering stops propagation`() {
        ContextPropagation.register(carrier)
        ContextPropagation.register(ContextCarrier.of(requestId)) // equal: same thread-local
        assertEquals(1, ContextPropagation.carriers.count { it == carrier })
        assertTrue(ContextPropagation.unregister(carrier))
        assertFalse(ContextPropagation.unregister(carrier))
        requestId.set("after-unregister")
        try {
            assertNull(loop.runSync { requestId.get() })
        } finally {
            requestId.remove()
        }
    }

    @Test
    fun `a carrier whose capture throws stops the call at the boundary, naming the carrier`() {
        val broken = object : ContextCarrier<String> {
            override fun capture(): String = throw IllegalStateException("tracing is misconfigured")
            override fun install(value: String): Any? = null
            override fun restore(token: Any?) {}
            override fun toString(): String = "BrokenCarrier"
        }
        ContextPropagation.register(broken)
        try {
            val ran = AtomicInteger()
            val thrown = assertThrows(IllegalStateException::class.java) { loop.runSync { ran.incrementAndGet() } }
            assertTrue(thrown.message!!.contains("BrokenCarrier"), thrown.message)
            assertTrue(thrown.message!!.contains("was not made"), thrown.message)
            assertEquals("tracing is misconfigured", thrown.cause!!.message)
            assertEquals(0, ran.get(), "the call did not run")
        } finally {
            ContextPropagation.unregister(broken)
        }
    }

    @Test
    fun `a carrier whose install throws is logged and the call still runs with the other carriers`() {
        val failure = AtomicReference<Throwable>()
        val broken = object : ContextCarrier<String> {
            override fun capture(): String = "x"
            override fun install(value: String): Any? = throw UnsupportedOperationException("cannot install")
            override fun restore(token: Any?) {
                failure.set(AssertionError("restore must not run for a carrier whose install failed"))
            }
            override fun toString(): String = "HalfBrokenCarrier"
        }
        ContextPropagation.register(broken)
        ContextPropagation.register(carrier)
        requestId.set("still-carried")
        try {
            LogCapture(ContextCarrier::class.java.name).use { logs ->
                assertEquals("still-carried", loop.runSync { requestId.get() })
                val errors = logs.messages(Level.SEVERE)
                assertTrue(errors.isNotEmpty() && errors.all { it.contains("HalfBrokenCarrier") }, "$errors")
            }
            assertNull(failure.get())
        } finally {
            requestId.remove()
            ContextPropagation.unregister(broken)
        }
    }

    @Test
    fun `a stream's flow runs with the context of the thread that made the stream`() {
        ContextPropagation.register(carrier)
        requestId.set("request-7")
        try {
            val source = kotlinx.coroutines.flow.flow {
                emit(requestId.get())
                yield()
                emit(requestId.get())
            }
            assertEquals(listOf("request-7", "request-7"), loop.stream(source).use { it.toList() })
        } finally {
            requestId.remove()
        }
        // The reader may see the end before the flow's last step has restored the loop thread: a call queued
        // now runs after that step (with no carrier registered, so the call itself writes nothing).
        ContextPropagation.unregister(carrier)
        loop.runSync { }
        val others = requestId.lastWritten.filterKeys { it !== Thread.currentThread() }
        assertTrue(others.isNotEmpty() && others.values.all { it == RecordedThreadLocal.NONE }, "the loop thread was left clean: $others")
    }
}
