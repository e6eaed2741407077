package io.corobridge.context

import io.corobridge.core.ContextPropagation
import io.corobridge.core.RunSyncLoop
import io.corobridge.core.runInWorkerThread
import io.micrometer.context.ContextRegistry
import io.micrometer.context.ThreadLocalAccessor
import io.opentelemetry.api.trace.Span
import io.opentelemetry.api.trace.SpanContext
import io.opentelemetry.api.trace.TraceFlags
import io.opentelemetry.api.trace.TraceState
import io.opentelemetry.context.Context
import io.opentelemetry.context.Scope
import java.util.concurrent.ConcurrentLinkedQueue
import java.util.concurrent.CyclicBarrier
import java.util.concurrent.TimeUnit
import kotlin.concurrent.thread
import kotlinx.coroutines.yield
import org.junit.jupiter.api.AfterEach
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.BeforeEach
import org.junit.jupiter.api.Test
import org.slf4j.MDC

/**
 * The registry's values end to end, as a Java service has them: an OpenTelemetry span made current by the caller
 * and the SLF4J MDC, both registered in the context-propagation registry (the span through an accessor of the kind
 * Micrometer Tracing registers; the MDC through context-propagation's own), carried by the carrier the service
 * loader registered.
 */
class ContextRegistryCarrierTest {
    private val loop = RunSyncLoop.create("carried")
    private val threads = ArrayList<Thread>()

    /**
     * The OpenTelemetry context as a ThreadLocalAccessor, as docs/java-guide.md writes it: each value made current
     * opens a scope, and restoring closes it, so the context storage sees every scope closed, in order.
     */
    private class OtelContextAccessor : ThreadLocalAccessor<Context> {
        private val scopes = ThreadLocal.withInitial { java.util.ArrayDeque<Scope>() }

        override fun key(): Any = KEY

        override fun getValue(): Context? = Context.current().takeIf { it !== Context.root() }

        override fun setValue(value: Context) {
            scopes.get().push(value.makeCurrent())
        }

        override fun setValue() {
            scopes.get().push(Context.root().makeCurrent())
        }

        override fun restore(previousValue: Context) {
            scopes.get().pop().close()
        }

        override fun restore() {
            scopes.get().pop().close()
        }

        companion object {
            const val KEY = "test.otel.context"
        }
    }

    /** The MDC entry "requestId" as a ThreadLocalAccessor. */
    private class RequestIdAccessor : ThreadLocalAccessor<String> {
        override fun key(): Any = KEY

        override fun getValue(): String? = MDC.get("requestId")

        override fun setValue(value: String) {
            MDC.put("requestId", value)
        }

        override fun setValue() {
            MDC.remove("requestId")
        }

        companion object {
            const val KEY = "test.mdc.requestId"
        }
    }

    @BeforeEach
    fun registerAccessors() {
        ContextRegistry.getInstance().registerThreadLocalAccessor(OtelContextAccessor())
        ContextRegistry.getInstance().registerThreadLocalAccessor(RequestIdAccessor())
    }

    @AfterEach
    fun cleanUp() {
        loop.close()
        threads.forEach { it.join(TimeUnit.SECONDS.toMillis(30)) }
        assertTrue(threads.none { it.isAlive }, "test threads left running")
        ContextRegistry.getInstance().removeThreadLocalAccessor(OtelContextAccessor.KEY)
        ContextRegistry.getInstance().removeThreadLocalAccessor(RequestIdAccessor.KEY)
    }

    /** What this thread sees now: the current span's trace id and the MDC's request id. */
    private fun seen(): Pair<String, String?> = Span.current().spanContext.traceId to MDC.get("requestId")

    private fun span(n: Int): Span = Span.wrap(
        SpanContext.create(
            String.format("%032x", n + 1), String.format("%016x", n + 1), TraceFlags.getSampled(), TraceState.getDefault(),
        )
    )

    private val none = SpanContext.getInvalid().traceId to null

    @Test
    fun `the service loader registered the carrier, once`() {
        assertEquals(1, ContextPropagation.carriers.count { it is ContextRegistryCarrier }, "${ContextPropagation.carriers}")
        ContextPropagation.register(ContextRegistryCarrier())
        assertEquals(1, ContextPropagation.carriers.count { it is ContextRegistryCarrier }, "a second one changes nothing")
    }

    @Test
    fun `a span and an MDC value follow the call to the loop, a worker, back to the loop and the re-entry thread`() {
        val mine = span(41)
        val expected = mine.spanContext.traceId to "r-41"
        val seen = Context.current().with(mine).makeCurrent().use {
            MDC.put("requestId", "r-41")
            try {
                val inside = loop.runSync {
                    val onLoop = seen()
                    yield()
                    val afterSuspension = seen()
                    val (onWorker, backOnLoop) = runInWorkerThread {
                        seen() to loop.runSync { seen() } // a worker calls back into the loop
                    }
                    val reentry = loop.runSync { seen() } // from the loop thread: a new thread of its own
                    listOf(onLoop, afterSuspension, onWorker, backOnLoop, reentry)
                }
                assertEquals(expected, seen(), "the caller's own values, unchanged")
                inside
            } finally {
                MDC.remove("requestId")
            }
        }
        assertEquals(List(5) { expected }, seen, "loop, after a suspension, worker, worker back to loop, re-entry")
        assertEquals(none, loop.runSync { seen() }, "nothing left on the loop thread for a caller without values")
    }

    @Test
    fun `concurrent callers never see each other's values`() {
        val callers = 8
        val rounds = 100
        val barrier = CyclicBarrier(callers)
        val wrong = ConcurrentLinkedQueue<String>()
        repeat(callers) { n ->
            threads += thread(name = "caller-$n") {
                repeat(rounds) { round ->
                    barrier.await(30, TimeUnit.SECONDS)
                    // Every other caller carries nothing: it must see nothing, not its neighbour's values.
                    val carries = (n + round) % 2 == 0
                    val expected = if (carries) span(n).spanContext.traceId to "r-$n" else none
                    val scope = if (carries) Context.current().with(span(n)).makeCurrent() else null
                    if (carries) MDC.put("requestId", "r-$n")
                    try {
                        val views = loop.runSync {
                            val first = seen()
                            yield()
                            listOf(first, seen(), runInWorkerThread { seen() }, seen())
                        }
                        views.withIndex().filter { it.value != expected }.forEach {
                            wrong += "caller $n round $round view ${it.index}: ${it.value}, expected $expected"
                        }
                        if (seen() != expected) wrong += "caller $n round $round: its own values changed to ${seen()}"
                    } finally {
                        MDC.remove("requestId")
                        scope?.close()
                    }
                }
            }
        }
        threads.forEach { it.join(TimeUnit.SECONDS.toMillis(60)) }
        assertTrue(wrong.isEmpty(), "${wrong.size} wrong views, first: ${wrong.take(5)}")
    }
}
