package io.corobridge.core.internal

import io.corobridge.core.CalledFrom
import io.corobridge.core.RunSyncLoop
import java.lang.ref.Cleaner
import java.util.Spliterator
import java.util.concurrent.CountDownLatch
import java.util.concurrent.locks.ReentrantLock
import java.util.function.Consumer
import java.util.stream.Stream
import java.util.stream.StreamSupport
import kotlin.concurrent.withLock
import kotlin.coroutines.EmptyCoroutineContext
import kotlin.coroutines.resume
import kotlinx.coroutines.CancellableContinuation
import kotlinx.coroutines.CancellationException
import kotlinx.coroutines.Job
import kotlinx.coroutines.currentCoroutineContext
import kotlinx.coroutines.ensureActive
import kotlinx.coroutines.flow.Flow
import kotlinx.coroutines.launch
import kotlinx.coroutines.suspendCancellableCoroutine

/*
 * RunSyncLoop.stream: a flow collected on a loop and read as a java.util.stream.Stream on the reader's thread.
 *
 * The flow runs in a coroutine of the loop's scope, so closing the loop cancels it. The first read starts it, not
 * stream(): a stream nobody reads starts nothing, and the first read is where the reading thread is known. On a
 * loop thread the re-entry policy applies (Reentry): the reader would block the thread the flow needs, so under
 * NEW_THREAD the flow runs on a loop made for it (closed when the flow ends) and under FAIL the read throws.
 *
 * The flow hands elements over through a buffer of `capacity` elements under one lock. The producer suspends
 * while the buffer is full; the reader blocks while it is empty, and wakes the producer once it has taken the
 * buffer down to half, so a fast flow and a slower reader pay one wake-up per half buffer, not one per element.
 *
 * Ending: a failure of the flow is kept to be thrown after the elements before it; the coroutine's completion
 * (after the flow's finally blocks have run) marks the buffer ended and opens `finished`. close() cancels the
 * coroutine and waits for `finished`, except on the thread that runs the flow, where waiting would deadlock. A
 * stream dropped unclosed is cleaned by a Cleaner registered on the spliterator: every stage of the pipeline and
 * any iterator over it reach that object, and the cleaning action and the coroutine reach only the source.
 */

/** A stream of [flow]'s elements, collected on [loop]; see RunSyncLoop.stream. */
internal fun <T> streamOf(loop: RunSyncLoop, flow: Flow<T>, capacity: Int): Stream<T> {
    val source = FlowSource(loop, flow, capacity)
    val spliterator = FlowSpliterator<T>(source)
    Cleaners.cleaner.register(spliterator, source::abandon)
    return StreamSupport.stream(spliterator, false).onClose(source::close)
}

private class FlowSpliterator<T>(private val source: FlowSource<*>) : Spliterator<T> {
    override fun tryAdvance(action: Consumer<in T>): Boolean {
        val item = source.next()
        if (item === END) return false
        @Suppress("UNCHECKED_CAST")
        action.accept(item as T)
        return true
    }

    override fun trySplit(): Spliterator<T>? = null

    override fun estimateSize(): Long = Long.MAX_VALUE

    override fun characteristics(): Int = Spliterator.ORDERED
}

/** What FlowSource.next returns at the end of the flow. */
private val END = Any()

/** No element in the buffer yet. */
private val NOTHING = Any()

private const val NEW = 0
private const val STARTED = 1
private const val CLOSED = 2

private class FlowSource<T>(
    private val loop: RunSyncLoop,
    private val flow: Flow<T>,
    private val capacity: Int,
) {
    private val carried = CarriedContext.capture()
    private val lock = ReentrantLock()
    private val readable = lock.newCondition()

    // Guarded by lock.
    private val items = ArrayDeque<Any?>()
    private var state = NEW
    private var producer: CancellableContinuation<Unit>? = null
    private var ended = false
    private var failure: Throwable? = null
    private var cancellation: Throwable? = null
    private var job: Job? = null
    private var runsOn: RunSyncLoop? = null

    /** Open once the flow's coroutine has completed, its finally blocks run. */
    private val finished = CountDownLatch(1)

    /** The next element, or END; blocks while the buffer is empty. On the reader's thread. */
    fun next(): Any? {
        val reader = Thread.currentThread()
        if (reader.isInterrupted) interrupted()
        try {
            while (true) {
                var wake: CancellableContinuation<Unit>? = null
                val item = lock.withLock {
                    if (state == NEW) start()
                    if (state == CLOSED) throw closedStream()
                    if (items.isEmpty()) {
                        if (ended) return end()
                        NOTHING
                    } else {
                        if (producer != null && items.size <= capacity / 2 + 1) {
                            wake = producer
                            producer = null
                        }
                        items.removeFirst()
                    }
                }
                if (item !== NOTHING) {
                    wake?.resume(Unit) // outside the lock: it dispatches the producer to its loop
                    return item
                }
                awaitReadable(reader)
            }
        } catch (_: InterruptedException) {
            interrupted()
        }
    }

    /** Waits until an element, the end or a close is there, lending a worker's slot meanwhile. */
    private fun awaitReadable(reader: Thread) {
        val wait = {
            lock.withLock {
                while (items.isEmpty() && !ended && state != CLOSED) readable.await()
            }
        }
        if (reader is WorkerThread) reader.lendingSlot(wait) else wait()
    }

    /** Starts the flow on the loop, or on a loop of its own for a reader on a loop thread. Under lock. */
    private fun start() {
        loop.closing.checkOpen()
        val target = if (Thread.currentThread() is LoopThread) {
            loop.admitReentry(
                "a read of a stream of loop \"${loop.name}\"",
                "From coroutine code collect the flow directly; from Java read the stream on a thread of your " +
                    "own, or subscribe to Bridge.publisher(flow).",
            )
            loop.reentryHelper()
        } else {
            loop
        }
        runsOn = target
        state = STARTED
        val started = target.scope.launch(carried ?: EmptyCoroutineContext) { produce() }
        job = started
        started.invokeOnCompletion(::flowEnded)
    }

    private suspend fun produce() {
        try {
            flow.collect { put(it) }
        } catch (thrown: Throwable) {
            currentCoroutineContext().ensureActive() // cancelled from outside: end as cancelled, not as failed
            lock.withLock { failure = thrown }
        }
    }

    private suspend fun put(item: T) {
        while (true) {
            lock.withLock {
                if (items.size < capacity) {
                    items.addLast(item)
                    readable.signal()
                    return
                }
            }
            suspendCancellableCoroutine { continuation ->
                val room = lock.withLock {
                    (items.size < capacity).also { if (!it) producer = continuation }
                }
                if (room) continuation.resume(Unit)
            }
        }
    }

    private fun flowEnded(cause: Throwable?) {
        lock.withLock {
            ended = true
            if (cause != null) cancellation = cause
            readable.signalAll()
        }
        finished.countDown()
        // A loop made for this flow ends with it; on its own thread this returns at once.
        val helper = runsOn
        if (helper != null && helper !== loop) helper.closing.shutdown(RunSyncLoop.DEFAULT_GRACE_NANOS)
    }

    /** At the end of the buffer, after the flow ended: END, the flow's failure, or its cancellation. Under lock. */
    private fun end(): Any? {
        failure?.let { thrown ->
            failure = null // thrown once; reads after it find the end
            throw CalledFrom.attach(thrown, loop.name)
        }
        cancellation?.let { cause ->
            cancellation = null
            throw java.util.concurrent.CancellationException(
                "the flow of a stream on loop \"${loop.name}\" was cancelled: ${cause.message}"
            ).apply { initCause(cause) }
        }
        return END
    }

    private fun closedStream() = IllegalStateException("the stream of loop \"${loop.name}\" is closed; its flow was cancelled")

    /** The reading thread was interrupted: cancel the flow, wait for it, and say so with the flag set again. */
    private fun interrupted(): Nothing {
        Thread.interrupted()
        val wasStarted = lock.withLock {
            val started = state == STARTED
            state = CLOSED
            started
        }
        if (wasStarted) stop(CancellationException("the thread reading the stream was interrupted"))
        Thread.currentThread().interrupt()
        throw java.util.concurrent.CancellationException(
            "the thread reading a stream of loop \"${loop.name}\" was interrupted; " +
                if (wasStarted) "the flow was cancelled" else "the flow was not started"
        )
    }

    /** Stream.close: cancels the flow and waits until its finally blocks have run. Harmless twice. */
    fun close() {
        val wasStarted = lock.withLock {
            val started = state == STARTED
            state = CLOSED
            readable.signalAll()
            started
        }
        if (wasStarted) stop(CancellationException("the stream was closed"))
    }

    /** Cancels the flow and waits for it to end, unless this thread runs it; an interrupt ends the wait. */
    private fun stop(cause: CancellationException) {
        val started = lock.withLock { job }
        started?.cancel(cause)
        if ((Thread.currentThread() as? LoopThread)?.loop === runsOn) return
        try {
            finished.await()
        } catch (_: InterruptedException) {
            Thread.currentThread().interrupt()
            return
        }
        val helper = runsOn
        if (helper != null && helper !== loop) helper.closing.shutdown(RunSyncLoop.DEFAULT_GRACE_NANOS)
    }

    /** The Cleaner's action for a stream dropped without closing: cancels the flow, waits for nothing. */
    fun abandon() {
        val started = lock.withLock {
            state = CLOSED
            job
        }
        started?.cancel(CancellationException("the stream was dropped without being closed"))
    }
}

/**
 * One Cleaner for every stream, its daemon thread started with the first stream. The thread carries no context
 * class loader: a Cleaner's thread ends once the Cleaner is unreachable and its actions have run, so when an
 * application that loaded corobridge is undeployed, this one ends too instead of holding the loader.
 */
private object Cleaners {
    val cleaner: Cleaner = Cleaner.create { task ->
        LibraryThreads.create { Thread(LibraryThreads.group, task, "corobridge-stream-cleaner", 0, false) }
            .also { it.contextClassLoader = null }
    }
}
