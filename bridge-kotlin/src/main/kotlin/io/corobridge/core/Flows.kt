@file:JvmName("FlowsKt")

package io.corobridge.core

import io.corobridge.core.internal.CheckedPublisher
import io.corobridge.core.internal.EndsItselfOffLoop
import io.corobridge.core.internal.LoopPublisher
import io.corobridge.core.internal.streamOf
import java.util.stream.Stream
import kotlinx.coroutines.CancellationException
import kotlinx.coroutines.currentCoroutineContext
import kotlinx.coroutines.flow.Flow
import kotlinx.coroutines.flow.flow
import kotlinx.coroutines.job
import kotlinx.coroutines.jdk9.asFlow
import kotlinx.coroutines.jdk9.asPublisher

/**
 * Returns a [Stream] of the elements [flow] emits, read on the caller's thread in the order emitted while the
 * flow is collected on this loop: a Kotlin `Flow` for Java code that reads streams.
 *
 * ```java
 * try (Stream<Order> orders = Bridge.stream(service.orders(customer))) {
 *     orders.filter(Order::isOpen).limit(10).forEach(this::show);
 * }   // closing cancels the flow and returns once its finally blocks have run
 * ```
 *
 * The first read starts the flow (a stream never read starts nothing). Reading blocks while no element is
 * ready; the flow runs ahead of the reader by at most [buffer] elements, then suspends in `emit` until the
 * reader has taken half of them. The stream is sequential and may be read from any one thread at a time.
 *
 * Ending: after the last element the stream ends; if the flow fails, the reader gets its exception unchanged
 * (the same instance, checked ones too, with the reader's frames attached as [CalledFrom]) after the elements
 * emitted before it. Closing the stream (try-with-resources, or `close()` after an early exit such as
 * `findFirst` or `limit`) cancels the flow and returns once it has finished cancelling; on the thread that runs
 * the flow it returns at once, and an interrupt ends the wait early (the flag stays set, the flow goes on
 * cancelling). Reading a closed stream throws [IllegalStateException]. A stream dropped
 * without closing is cancelled once garbage-collected (by a `java.lang.ref.Cleaner` on a daemon thread named
 * `corobridge-stream-cleaner`); until then its flow stays suspended in `emit`, holding its buffer.
 *
 * If the reading thread is interrupted, the flow is cancelled, the read waits until it has finished cancelling,
 * sets the interrupt flag again and throws [java.util.concurrent.CancellationException]. Closing the loop
 * cancels the flow: a read then throws that exception too, naming the loop. Read on a loop thread, where
 * blocking would starve the flow, the loop's [ReentryPolicy] decides at the first read: by default the flow
 * runs on a new thread with its own event loop (and a warning is logged once per call site); under
 * [ReentryPolicy.FAIL] the read throws [IllegalStateException].
 *
 * The thread-bound context registered with [ContextCarrier] is captured here, on the calling thread, and
 * installed while the flow runs.
 *
 * @throws IllegalArgumentException if [buffer] is less than 1
 * @since 0.2
 */
@JvmOverloads
public fun <T> RunSyncLoop.stream(flow: Flow<T>, buffer: Int = DEFAULT_STREAM_BUFFER): Stream<T> {
    require(buffer >= 1) { "buffer must be at least 1, was $buffer" }
    return streamOf(this, flow, buffer)
}

/** How far a stream's flow may run ahead of its reader unless told: the `buffer()` default of kotlinx. */
private const val DEFAULT_STREAM_BUFFER = 64

/**
 * Returns a [java.util.concurrent.Flow.Publisher] of the elements [flow] emits, collected on this loop for each
 * subscriber: a Kotlin `Flow` for reactive Java code (JDK `Flow`, and through its adapters Reactor or RxJava).
 *
 * Built on kotlinx-coroutines-jdk9, which keeps the Reactive Streams rules: the flow emits only what the
 * subscriber has requested, each subscription collects the flow anew, `cancel()` cancels the collection,
 * and a failure of the flow reaches `onError` unchanged; `request(n)` with `n <= 0` cancels the subscription
 * and signals `onError(IllegalArgumentException)` (rule 3.9). The subscriber's methods run on the loop thread: keep
 * them short, or hand the work on. A flow that emits `null`, which Reactive Streams forbid, ends its
 * subscription with `onError(NullPointerException)`. Closing the loop cancels every subscription, whose
 * subscribers get `onError` with a [java.util.concurrent.CancellationException]; subscribing to a closed loop's
 * publisher gets `onError` with an [IllegalStateException].
 *
 * @since 0.2
 */
public fun <T : Any> RunSyncLoop.publisher(flow: Flow<T>): java.util.concurrent.Flow.Publisher<T> {
    val loop = this
    val bound = flow {
        loop.closing.checkOpen()
        val collecting = currentCoroutineContext().job
        // A subscription is no child of the loop (kotlinx makes it a root coroutine), so link it by hand.
        val link = loop.supervisorJob.invokeOnCompletion {
            collecting.cancel(CancellationException("loop \"${loop.name}\" closed"))
        }
        try {
            flow.collect { element ->
                @Suppress("SENSELESS_COMPARISON") // Java code can hand over a flow that emits null
                if (element == null) {
                    throw NullPointerException("the flow emitted null, which a Flow.Publisher cannot deliver")
                }
                emit(element)
            }
        } finally {
            link.dispose()
        }
    }
    return LoopPublisher(bound.asPublisher(dispatcher + EndsItselfOffLoop), loop)
}

/**
 * Returns a [Flow] of the elements this JDK publisher publishes, for suspend code (and, through Java's
 * `Bridge.flow(publisher)`, for Java code that passes a publisher to a suspend function that takes a flow).
 *
 * kotlinx-coroutines-jdk9's `asFlow()`, with the publisher held to the Reactive Streams rules a broken one
 * breaks: an element `null` ends the collection with a [NullPointerException], more elements than requested
 * with an [IllegalStateException], both naming the publisher and the rule (kotlinx alone would end the flow
 * silently at a `null`). Each collection subscribes once, requests elements in batches as it takes them, and
 * cancels its subscription when it ends or is cancelled, also before the publisher has called `onSubscribe`;
 * the publisher's `onError` is what the collection throws. No loop is involved: the flow is collected by
 * whichever coroutine collects it.
 *
 * @since 0.2
 */
public fun <T : Any> java.util.concurrent.Flow.Publisher<T>.toFlow(): Flow<T> = CheckedPublisher(this).asFlow()
