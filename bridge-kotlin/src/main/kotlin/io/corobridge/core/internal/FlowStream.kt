package io.corobridge.core.internal

import io.corobridge.core.CalledFrom
import io.corobridge.core.RunSyncLoop
import java.lang.ref.Cleaner
import java.util.Spliterator
import java.util.concurrent.CountDownLatch
import java.util.concurrent.atomic.AtomicReference
import java.util.concurrent.locks.LockSupport
import java.util.function.Consumer
import java.util.stream.Stream
import java.util.stream.StreamSupport
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
 * The flow hands elements over through a ring of `capacity` slots with one writer and one reader, without locks:
 * each side publishes its index with a volatile write and reads the other's. The producer suspends while the ring
 * is full; the reader spins briefly, then parks, while it is empty. Each side announces that it waits (the
 * producer's continuation, the reader's thread) before looking at the ring once more, and the other side looks
 * for that announcement after moving its index, so one of them always sees the other. The reader wakes the
 * producer once it has taken the ring down to half, so a fast flow and a slower reader pay one wake-up per half
 * ring, not one per element.
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

private const val NEW = 0
private const val STARTED = 1
private const val CLOSED = 2

private class FlowSource<T>(
    private val loop: RunSyncLoop,
    private val flow: Flow<T>,
    private val capacity: Int,
) {
    private val carried = CarriedContext.capture()

    // The buffer: a ring with one writer, the flow's coroutine (tail), and one reader at a time (head).
    private val ring = arrayOfNulls<Any?>(capacity)
    @Volatile
    private var head = 0L
    @Volatile
    private var tail = 0L

    /** The reader, while it is parked or about to park on an empty buffer. */
    @Volatile
    private var parkedReader: Thread? = null

    /** The flow's coroutine, while it is suspended on a full buffer. */
    private val producer = AtomicReference<CancellableContinuation<Unit>?>()

    @Volatile
    private var state = NEW

    /** Set once the coroutine has completed; [failure] and [cancellation] are written before it. */
    @Volatile
    private var ended = false
    private var failure: Throwable? = null
    private var cancellation: Throwable? = null

    /** Guards the moves between NEW, STARTED and CLOSED: first read, close, interrupt, Cleaner. */
    private val stateLock = Any()
    @Volatile
    private var job: Job? = null
    @Volatile
    private var runsOn: RunSyncLoop? = null

    /** Open once the flow's coroutine has completed, its finally blocks run. */
    private val finished = CountDownLatch(1)

    /** The next element, or END; blocks while the buffer is empty. On the reader's thread. */
    fun next(): Any? {
        val reader = Thread.currentThread()
        if (reader.isInterrupted) interrupted()
        if (state == NEW) synchronized(stateLock) { if (state == NEW) start() }
        try {
            while (true) {
                if (state == CLOSED) throw closedStream()
                val at = head
                if (at < tail) return take(at)
                if (ended) {
                    if (head < tail) continue // elements put before the end, seen now that the end is
                    return end()
                }
                awaitReadable(reader)
            }
        } catch (_: InterruptedException) {
            interrupted()
        }
    }

    private fun take(at: Long): Any? {
        val slot = (at % capacity).toInt()
        val item = ring[slot]
        ring[slot] = null
        head = at + 1
        if (producer.get() != null && tail - (at + 1) <= capacity / 2) producer.getAndSet(null)?.resume(Unit)
        return item
    }

    /**
     * Waits until an element, the end or a close is there: spinning briefly first, as a blocking call's caller
     * does (a flow that emits without suspending has the next element ready within microseconds, and a parked
     * reader costs the loop an unpark), then parked, lending a worker's slot meanwhile.
     */
    private fun awaitReadable(reader: Thread) {
        Spinning.spinUntil(runsOn ?: loop) { readable() }
        if (readable()) return
        val park = {
            parkedReader = reader
            try {
                // Written before the check, so a producer that puts after it sees the reader and wakes it.
                while (!readable()) {
                    LockSupport.park(this)
                    if (Thread.interrupted()) throw InterruptedException()
                }
            } finally {
                parkedReader = null
            }
        }
        if (reader is WorkerThread) reader.lendingSlot(park) else park()
    }

    private fun readable(): Boolean = head < tail || ended || state == CLOSED

    /** Starts the flow on the loop, or on a loop of its own for a reader on a loop thread. Under stateLock. */
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
            failure = thrown
        }
    }

    private suspend fun put(item: T) {
        while (true) {
            val at = tail
            if (at - head < capacity) {
                ring[(at % capacity).toInt()] = item
                tail = at + 1
                parkedReader?.let { LockSupport.unpark(it) }
                return
            }
            suspendCancellableCoroutine { continuation ->
                producer.set(continuation)
                // The reader may have taken elements before it could see us waiting: look again.
                if (tail - head < capacity && producer.compareAndSet(continuation, null)) continuation.resume(Unit)
            }
        }
    }

    private fun flowEnded(cause: Throwable?) {
        if (cause != null) cancellation = cause
        ended = true
        parkedReader?.let { LockSupport.unpark(it) }
        finished.countDown()
        // A loop made for this flow ends with it; on its own thread this returns at once.
        val helper = runsOn
        if (helper != null && helper !== loop) helper.closing.shutdown(RunSyncLoop.DEFAULT_GRACE_NANOS)
    }

    /** After the last element of an ended flow: END, the flow's failure, or its cancellation. Reader only. */
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

    /** Moves to CLOSED, wakes a parked reader, and says whether the flow had started. */
    private fun closeState(): Boolean {
        val wasStarted = synchronized(stateLock) {
            val started = state == STARTED
            state = CLOSED
            started
        }
        parkedReader?.let { LockSupport.unpark(it) }
        return wasStarted
    }

    /** The reading thread was interrupted: cancel the flow, wait for it, and say so with the flag set again. */
    private fun interrupted(): Nothing {
        Thread.interrupted()
        val wasStarted = closeState()
        if (wasStarted) stop(CancellationException("the thread reading the stream was interrupted"))
        Thread.currentThread().interrupt()
        throw java.util.concurrent.CancellationException(
            "the thread reading a stream of loop \"${loop.name}\" was interrupted; " +
                if (wasStarted) "the flow was cancelled" else "the flow was not started"
        )
    }

    /** Stream.close: cancels the flow and waits until its finally blocks have run. Harmless twice. */
    fun close() {
        if (closeState()) stop(CancellationException("the stream was closed"))
    }

    /** Cancels the flow and waits for it to end, unless this thread runs it; an interrupt ends the wait. */
    private fun stop(cause: CancellationException) {
        job?.cancel(cause)
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
        closeState()
        job?.cancel(CancellationException("the stream was dropped without being closed"))
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
