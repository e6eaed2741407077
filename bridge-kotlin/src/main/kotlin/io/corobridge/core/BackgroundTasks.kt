package io.corobridge.core

import io.corobridge.core.internal.reportFailure
import io.corobridge.core.internal.submitCall
import io.corobridge.core.internal.FutureCall
import java.util.concurrent.CompletableFuture
import java.util.concurrent.ConcurrentHashMap
import kotlinx.coroutines.CancellationException
import kotlinx.coroutines.CompletableJob
import kotlinx.coroutines.Job
import kotlinx.coroutines.SupervisorJob
import kotlinx.coroutines.joinAll
import kotlinx.coroutines.withTimeoutOrNull
import kotlin.coroutines.intrinsics.COROUTINE_SUSPENDED
import kotlin.coroutines.intrinsics.createCoroutineUnintercepted
import kotlin.coroutines.jvm.internal.CoroutineStackFrame
import kotlin.coroutines.resume
import kotlin.time.Duration.Companion.nanoseconds

/**
 * Fire-and-forget work started with [RunSyncLoop.launch]: it runs on the loop, nobody waits for it, and it is
 * never lost. The loop holds it strongly until it ends, even if every other reference to it is dropped, and
 * reports its failure to the loop's `failureHandler` rather than swallowing it.
 *
 * Safe to use from any thread.
 *
 * @since 0.1
 */
public class BackgroundTask internal constructor(private val future: CompletableFuture<Any?>) {
    /**
     * A future of the task's end, completed on the thread that ends the task (normally the loop thread): with
     * its result, or exceptionally with its failure or cancellation (the exception itself, unwrapped).
     * Cancelling this future does not cancel the task; call [cancel]. Java calls it `completion()`.
     */
    @get:JvmName("completion")
    public val completion: CompletableFuture<Any?> = CompletableFuture()

    /** True once the task has ended, whether it finished, failed or was cancelled. */
    public val isDone: Boolean
        get() = future.isDone

    /**
     * Cancels the task, whether queued or running; returns at once. Cancelling an ended task does nothing.
     *
     * @since 0.1
     */
    public fun cancel() {
        future.cancel(false)
    }
}

/** The loop's background tasks: started, held until they end, and finished off when the loop closes. */
internal class BackgroundTasks(private val loop: RunSyncLoop) {
    /** Parent of every background task; apart from the supervisor of calls, which closing cancels at once. */
    val job: CompletableJob = SupervisorJob()
    val running: MutableSet<BackgroundTask> = ConcurrentHashMap.newKeySet()

    /** Starts [body] (a suspend lambda or a [SuspendCall]) as a background task. */
    fun launch(body: Any): BackgroundTask {
        loop.closing.checkOpen() // before the call exists: a refused call must not stay attached to the job
        val call = BackgroundCall(loop, body)
        @Suppress("UNCHECKED_CAST")
        val task = BackgroundTask(call.future as CompletableFuture<Any?>)
        running.add(task)
        call.task = task
        try {
            loop.submitCall(call)
        } catch (refused: IllegalStateException) {
            // The loop began closing after our check: complete the call so it leaves the job, then say no.
            call.reject(CancellationException("loop \"${loop.name}\" closed before the task started"))
            throw refused
        }
        return task
    }

    val count: Int
        get() = running.size

    /** What closing did to the background tasks; see [finish]. */
    class Finish(val cancelled: Int, val abandoned: List<String>)

    /**
     * Lets the tasks run for up to [graceNanos], cancels those still running and waits up to [cancelNanos] for
     * them to finish cancelling; those that have not by then (they ignore cancellation) are abandoned where
     * they are, and described in the result. Runs on the loop thread while it closes; never waits longer.
     */
    suspend fun finish(graceNanos: Long, cancelNanos: Long): Finish {
        val ended = withTimeoutOrNull(graceNanos.nanoseconds) { job.children.toList().joinAll() } != null
        if (ended) {
            job.cancel()
            return Finish(0, emptyList())
        }
        val still = job.children.filter { it.isActive }.toList()
        job.cancel(CancellationException("loop \"${loop.name}\" closed and the grace period had passed"))
        withTimeoutOrNull(cancelNanos.nanoseconds) { still.joinAll() }
        val abandoned = still.filter { !it.isCompleted }.map { (it as? BackgroundCall)?.describe() ?: it.toString() }
        return Finish(still.size, abandoned)
    }

    /**
     * A background task's call: a future-completing call whose parent is the background tasks' job. (Read
     * through the loop: the superclass attaches the call while this class's own fields are not yet set.)
     *
     * Its end completes the task's completion future and reports a failure directly, not through dependent
     * stages of the call's future: CompletableFuture wraps a failure in a CompletionException for each such
     * stage, whose constructor calls the failure's toString(), and a failure whose toString() throws would then
     * stop the chain and leave the completion future forever incomplete.
     */
    private class BackgroundCall(loop: RunSyncLoop, body: Any) : FutureCall<Any?>(loop, body) {
        /** Set right after construction, before the call is submitted; so before it can end. */
        lateinit var task: BackgroundTask

        override fun parentJob(): Job = loop.backgroundTasks.job

        override fun refusedOnceClosing(): Boolean = false

        override val countsAsCall: Boolean
            get() = false

        /** The body's outermost frame, while it runs: where a task that ignores cancellation is stuck. */
        @Volatile
        private var frame: kotlin.coroutines.Continuation<Unit>? = null

        override fun startBody(): Any? {
            if (body is SuspendCall<*>) return super.startBody()
            // Started as a frame we keep (its completion is this call, so it completes the call itself), for
            // describe(); a call pays nothing for it, only background tasks do.
            @Suppress("UNCHECKED_CAST")
            val started = (body as suspend () -> Any?).createCoroutineUnintercepted(this)
            frame = started
            started.resume(Unit)
            return COROUTINE_SUSPENDED
        }

        /** The task's code, and the line where it is suspended if it is a Kotlin suspend lambda. */
        fun describe(): String {
            val name = body.javaClass.name
            val code = name.substringBefore("$\$Lambda").let { if (it != name) "a lambda in $it" else name }
            val at = (frame as? CoroutineStackFrame)?.getStackTraceElement()
            return if (at != null) "$code, suspended at $at" else code
        }

        override fun ended(value: Any?, failure: Throwable?) {
            frame = null
            val first = try {
                if (failure == null) task.completion.complete(value) else task.completion.completeExceptionally(failure)
            } catch (stage: Throwable) {
                // One of the user's dependent stages threw while being completed; the completion is done.
                if (stage is VirtualMachineError) throw stage
                loop.reportFailure(stage)
                true
            }
            if (!first) return // aborted after it had ended: reported already
            loop.backgroundTasks.running.remove(task)
            if (failure != null && failure !is CancellationException) loop.reportFailure(failure)
        }
    }
}

// ---- Entry points: background tasks on a loop ----

/**
 * Starts [block] on the loop as a background task and returns at once: fire and forget, never lost.
 *
 * The loop holds the task strongly until it ends, even if the returned [BackgroundTask] is dropped. A failure is
 * reported to [RunSyncLoop.failureHandler] (by default logged with its stack trace), never swallowed; cancellation is
 * not a failure. When the loop closes, background tasks get the grace period of [RunSyncLoop.close] to finish before
 * they are cancelled.
 *
 * @throws IllegalStateException if the loop is closed
 * @since 0.1
 */
@JvmSynthetic
public fun RunSyncLoop.launch(block: suspend () -> Any?): BackgroundTask = backgroundTasks.launch(block)

// ---- Java-shaped form (a SuspendCall, Runnable or Callable, as Java writes them) ----
/**
 * [launch] for a computation in continuation-passing form, as Java writes it.
 *
 * @since 0.1
 */
public fun RunSyncLoop.launch(call: SuspendCall<*>): BackgroundTask = backgroundTasks.launch(call)
