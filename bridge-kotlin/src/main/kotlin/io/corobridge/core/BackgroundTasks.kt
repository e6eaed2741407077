package io.corobridge.core

import io.corobridge.core.internal.FutureCall
import java.util.concurrent.CompletableFuture
import java.util.concurrent.ConcurrentHashMap
import kotlinx.coroutines.CancellationException
import kotlinx.coroutines.CompletableJob
import kotlinx.coroutines.Job
import kotlinx.coroutines.SupervisorJob
import kotlinx.coroutines.joinAll
import kotlinx.coroutines.withTimeoutOrNull
import kotlin.time.Duration.Companion.nanoseconds

/**
 * Fire-and-forget work started with [RunSyncLoop.launch]: it runs on the loop, nobody waits for it, and it is
 * never lost. The loop holds it strongly until it ends, even if every other reference to it is dropped, and
 * reports its failure to the loop's `failureHandler` rather than swallowing it.
 *
 * Safe to use from any thread.
 */
public class LoopTask internal constructor(private val future: CompletableFuture<Any?>) {
    /**
     * A future of the task's end, completed on the thread that ends the task (normally the loop thread): with
     * its result, or exceptionally with its failure or cancellation (the exception itself, unwrapped).
     * Cancelling this future does not cancel the task; call [cancel].
     */
    public val completion: CompletableFuture<Any?> = CompletableFuture()

    /** True once the task has ended, whether it finished, failed or was cancelled. */
    public val isDone: Boolean
        get() = future.isDone

    /** Cancels the task, whether queued or running; returns at once. Cancelling an ended task does nothing. */
    public fun cancel() {
        future.cancel(false)
    }
}

/** The loop's background tasks: started, held until they end, and finished off when the loop closes. */
internal class BackgroundTasks(private val loop: RunSyncLoop) {
    /** Parent of every background task; apart from the supervisor of calls, which closing cancels at once. */
    val job: CompletableJob = SupervisorJob()
    val running: MutableSet<LoopTask> = ConcurrentHashMap.newKeySet()

    /** Starts [body] (a suspend lambda or a [ContinuationCall]) as a background task. */
    fun launch(body: Any): LoopTask {
        loop.checkOpen() // before the call exists: a refused call must not stay attached to the job
        val call = BackgroundCall(loop, body)
        @Suppress("UNCHECKED_CAST")
        val task = LoopTask(call.future as CompletableFuture<Any?>)
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

    /**
     * Lets the tasks run for up to [graceNanos], cancels those still running and waits for them to end;
     * returns how many were cancelled. Runs on the loop thread while it closes.
     */
    suspend fun finish(graceNanos: Long): Int {
        val ended = withTimeoutOrNull(graceNanos.nanoseconds) { job.children.toList().joinAll() } != null
        var cancelled = 0
        if (!ended) {
            val still = job.children.filter { it.isActive }.toList()
            cancelled = still.size
            job.cancel(CancellationException("loop \"${loop.name}\" closed and the grace period had passed"))
            still.joinAll()
        }
        job.cancel()
        return cancelled
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
        lateinit var task: LoopTask

        override fun parentJob(): Job = loop.backgroundTasks.job

        override fun refusedOnceClosing(): Boolean = false

        override val countsAsCall: Boolean
            get() = false

        override fun ended(value: Any?, failure: Throwable?) {
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
