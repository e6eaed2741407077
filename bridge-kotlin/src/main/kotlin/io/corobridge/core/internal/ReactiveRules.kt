package io.corobridge.core.internal

import io.corobridge.core.RunSyncLoop
import java.util.concurrent.Flow.Publisher
import java.util.concurrent.Flow.Subscriber
import java.util.concurrent.Flow.Subscription
import java.util.concurrent.atomic.AtomicBoolean
import java.util.concurrent.atomic.AtomicLong
import kotlin.coroutines.EmptyCoroutineContext

/*
 * What corobridge adds around kotlinx-coroutines-jdk9's conversions: the Reactive Streams rules it leaves to the
 * other side, checked so that a broken peer gets a clear error instead of silence or a hang.
 *
 * Flow -> Publisher (LoopPublisher): kotlinx ignores request(n) with n <= 0 (rule 3.9 wants onError) and throws
 * a bare NullPointerException for subscribe(null). Its subscription signals on the loop thread, so an error of
 * ours is dispatched to the loop too: it then comes after any signal in progress, never beside one.
 *
 * Publisher -> Flow (CheckedSubscriber): kotlinx's subscriber takes onNext(null) for the end of the stream (the
 * elements after it are lost without a word), dumps its channel's insides when a publisher sends more than was
 * requested, and fails with UninitializedPropertyAccessException when cancelled before the publisher called
 * onSubscribe. Between the publisher and kotlinx sits a subscriber that hands kotlinx a subscription at once,
 * passes demand and cancellation on once the publisher's own subscription arrives, and ends the flow with a
 * named error when the publisher breaks rule 2.13 (null) or 1.1 (more than requested).
 */

/** [inner], with subscribe(null) and request(n <= 0) refused as Reactive Streams asks. */
internal class LoopPublisher<T>(private val inner: Publisher<T>, private val loop: RunSyncLoop) : Publisher<T> {
    override fun subscribe(subscriber: Subscriber<in T>?) {
        if (subscriber == null) throw NullPointerException("subscriber must not be null")
        inner.subscribe(DemandChecking(subscriber, loop))
    }

    private class DemandChecking<T>(private val down: Subscriber<in T>, private val loop: RunSyncLoop) :
        Subscriber<T>, Subscription {
        private lateinit var up: Subscription
        private val ended = AtomicBoolean()

        override fun onSubscribe(subscription: Subscription) {
            up = subscription
            down.onSubscribe(this)
        }

        override fun request(n: Long) {
            if (n > 0) {
                up.request(n)
                return
            }
            up.cancel()
            val error = IllegalArgumentException("request(n) needs n > 0, was $n (Reactive Streams rule 3.9)")
            loop.dispatcher.dispatch(EmptyCoroutineContext, Runnable { if (ended.compareAndSet(false, true)) down.onError(error) })
        }

        override fun cancel() {
            up.cancel()
        }

        override fun onNext(item: T) {
            if (!ended.get()) down.onNext(item)
        }

        override fun onError(failure: Throwable) {
            if (ended.compareAndSet(false, true)) down.onError(failure)
        }

        override fun onComplete() {
            if (ended.compareAndSet(false, true)) down.onComplete()
        }
    }
}

/** [inner], whose subscribers are checked: see the top of this file. */
internal class CheckedPublisher<T : Any>(private val inner: Publisher<T>) : Publisher<T> {
    override fun subscribe(subscriber: Subscriber<in T>?) {
        if (subscriber == null) throw NullPointerException("subscriber must not be null")
        val checked = CheckedSubscriber(subscriber, inner)
        subscriber.onSubscribe(checked)
        inner.subscribe(checked)
    }
}

private class CheckedSubscriber<T : Any>(private val down: Subscriber<in T>, private val publisher: Any) :
    Subscriber<T>, Subscription {
    private val lock = Any()
    private var up: Subscription? = null // guarded by lock
    private var demandBeforeUp = 0L // guarded by lock
    private var cancelled = false // guarded by lock

    /** Requested and not yet delivered; UNBOUNDED once Long.MAX_VALUE in all has been asked for. */
    private val outstanding = AtomicLong()

    @Volatile
    private var ended = false

    override fun request(n: Long) {
        addDemand(n)
        val subscription = synchronized(lock) {
            up ?: run {
                demandBeforeUp = saturatedAdd(demandBeforeUp, n)
                null
            }
        }
        subscription?.request(n)
    }

    override fun cancel() {
        val subscription = synchronized(lock) {
            cancelled = true
            up
        }
        subscription?.cancel()
    }

    override fun onSubscribe(subscription: Subscription) {
        val (cancelNow, demand) = synchronized(lock) {
            if (up != null || cancelled) {
                true to 0L
            } else {
                up = subscription
                false to demandBeforeUp.also { demandBeforeUp = 0L }
            }
        }
        if (cancelNow) subscription.cancel() else if (demand > 0) subscription.request(demand)
    }

    override fun onNext(item: T?) { // nullable: a Java publisher can send null, and Kotlin would check it first
        if (ended) return
        if (item == null) {
            fail(NullPointerException("publisher $publisher sent null, which Reactive Streams forbid (rule 2.13)"))
            return
        }
        if (outstanding.get() != UNBOUNDED && outstanding.decrementAndGet() < 0) {
            fail(IllegalStateException("publisher $publisher sent more elements than were requested (Reactive Streams rule 1.1)"))
            return
        }
        down.onNext(item)
    }

    override fun onError(failure: Throwable?) {
        if (ended) return
        ended = true
        down.onError(failure ?: NullPointerException("publisher $publisher signalled onError(null) (rule 2.13)"))
    }

    override fun onComplete() {
        if (ended) return
        ended = true
        down.onComplete()
    }

    private fun fail(error: Throwable) {
        ended = true
        cancel()
        down.onError(error)
    }

    private fun addDemand(n: Long) {
        while (true) {
            val current = outstanding.get()
            if (current == UNBOUNDED) return
            val next = saturatedAdd(current, n)
            if (outstanding.compareAndSet(current, next)) return
        }
    }

    private fun saturatedAdd(a: Long, b: Long): Long = if (a > UNBOUNDED - b) UNBOUNDED else a + b

    private companion object {
        const val UNBOUNDED = Long.MAX_VALUE
    }
}
