package io.corobridge.core.internal

import io.corobridge.core.SuspendCall
import kotlin.coroutines.Continuation
import kotlin.coroutines.intrinsics.startCoroutineUninterceptedOrReturn
import kotlin.coroutines.intrinsics.suspendCoroutineUninterceptedOrReturn

/*
 * The body of a call, as the entry points take it: a Kotlin suspend lambda, a SuspendCall (what Java's
 * SuspendCall is, and what our own Java-shaped adapters return), or, for a shutdown callback, a Runnable. It is
 * kept as `Any` rather than wrapped in a type of ours, so that a call allocates no wrapper; this file is the one
 * place that tells the shapes apart.
 */
internal object CallBodies {
    /**
     * Starts [body] on this thread with [completion] as its continuation: returns its value, or
     * COROUTINE_SUSPENDED if it suspended (it then completes [completion] later).
     */
    @Suppress("UNCHECKED_CAST")
    fun <T> start(body: Any, completion: Continuation<T>): Any? = when (body) {
        is SuspendCall<*> -> (body as SuspendCall<T>).invoke(completion)
        is Runnable -> body.run()
        else -> (body as suspend () -> T).startCoroutineUninterceptedOrReturn(completion)
    }

    /** Runs [body] from suspend code and returns its value. */
    suspend fun <T> run(body: Any): T = suspendCoroutineUninterceptedOrReturn { continuation -> start(body, continuation) }

    /** [block] as a SuspendCall, the form Java code and the Java-shaped entry points take. */
    fun <T> asCall(block: suspend () -> T): SuspendCall<T> = object : SuspendCall<T> {
        override fun invoke(continuation: Continuation<T>): Any? = block.startCoroutineUninterceptedOrReturn(continuation)
    }
}
