package io.corobridge.core

import io.corobridge.core.internal.BlockingCall
import io.corobridge.core.internal.CallerThreadCall
import io.corobridge.core.internal.CallEvent
import io.corobridge.core.internal.StallStats
import io.corobridge.core.internal.SuspendedCalls
import io.corobridge.core.internal.WorkerPool
import io.corobridge.core.internal.WorkerThread
import io.corobridge.core.internal.CallSites
import io.corobridge.core.internal.DispatchedTask
import io.corobridge.core.internal.QueuedTask
import io.corobridge.core.internal.FutureCall
import io.corobridge.core.internal.LoopCall
import io.corobridge.core.internal.LoopDispatcher
import io.corobridge.core.internal.LoopThread
import io.corobridge.core.internal.LibraryThreads
import io.corobridge.core.internal.describeNanos
import io.corobridge.core.internal.nanosOr
import io.corobridge.core.internal.logFailure
import io.corobridge.core.internal.describe
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeoutOrNull
import kotlin.time.Duration.Companion.nanoseconds
import kotlinx.coroutines.CompletableJob
import kotlinx.coroutines.CoroutineDispatcher
import kotlinx.coroutines.CoroutineExceptionHandler
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.CoroutineStart
import kotlinx.coroutines.Job
import kotlinx.coroutines.launch
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.SupervisorJob
import kotlinx.coroutines.cancel
import java.util.concurrent.CompletableFuture
import java.util.concurrent.CountDownLatch
import java.util.concurrent.TimeUnit
import java.util.concurrent.TimeoutException
import java.util.concurrent.atomic.AtomicBoolean
import java.util.concurrent.atomic.AtomicInteger
import java.util.concurrent.atomic.LongAdder
import kotlin.coroutines.intrinsics.startCoroutineUninterceptedOrReturn
import kotlin.coroutines.CoroutineContext
import kotlin.coroutines.cancellation.CancellationException
import kotlin.time.Duration

/**
 * An event loop on one dedicated daemon thread, on which coroutines run and to which blocking code hands
 * them: the JVM counterpart of Prefect's "run sync" loop.
 *
 * Safe to use from any thread. The thread, named `corobridge-loop-<name>`, starts on first use, exactly once
 * however many threads race to use the loop first. Everything submitted runs on it, from its first line, one
 * piece at a time: a call that suspends lets the others run, so calls from many threads interleave.
 *
 * [default] is the process-wide loop, closed by a JVM shutdown hook. [create] makes a separate loop that the
 * caller owns and must [close]:
 *
 * ```kotlin
 * RunSyncLoop.create("db").use { loop ->
 *     val user = loop.runSync { repository.load(42) }   // blocks this thread, runs on corobridge-loop-db
 * }
 * ```
 *
 * Lifecycle: open, then closing (new calls are refused, calls in flight are cancelled), then closed (the
 * thread has ended). A failure that escapes a task onto the loop thread goes to [failureHandler] and the loop
 * keeps serving; if the loop thread dies anyway, every waiting caller is released with an
 * [IllegalStateException].
 */
public class RunSyncLoop private constructor(
    /** The name given at creation; the thread is called `corobridge-loop-<name>`. */
    public val name: String,
    private val isDefault: Boolean,
) : AutoCloseable {

    internal val thread: LoopThread = LibraryThreads.create { LoopThread(this, "corobridge-loop-$name") }
    private val state = AtomicInteger(OPEN)
    private val started = AtomicBoolean()
    private val terminated = CountDownLatch(1)
    internal val supervisorJob: CompletableJob = SupervisorJob()
    internal val backgroundTasks: BackgroundTasks = BackgroundTasks(this)
    private val shutdownCallbacks = ShutdownCallbacks(this)

    internal val workerPool: WorkerPool = WorkerPool(this)
    // Statistics, counted where the work is handed over so that a blocking call pays one striped increment
    // on each side of its wait and nothing more: tasks queued = calls started + other tasks added - tasks run.
    private val callsStarted = LongAdder()
    private val callsEnded = LongAdder()
    private val otherTasksAdded = LongAdder()
    internal val stallStats: StallStats = StallStats()

    @Volatile
    internal var stallThresholdNanos: Long = DEFAULT_STALL_NANOS
        private set

    @Volatile
    private var closingSequence: Job? = null
    internal val spinningCallers: AtomicInteger = AtomicInteger()

    /** Callers' spins in a row that ended without an answer, up to Spinning.MISSES_TO_PAUSE. */
    @Volatile
    internal var spinMisses: Int = 0
    private val reentries = AtomicInteger()

    @Volatile
    private var closeDeadline: Long = 0L

    /** When calls cancelled by close() that have not finished are abandoned (close start + closeGraceNanos). */
    @Volatile
    private var callsDeadline: Long = 0L

    /**
     * When a loop thread still inside the task it was running when close began counts as stuck (close start +
     * background grace + closeGraceNanos: by then the closing sequence would have abandoned cancelled work).
     */
    @Volatile
    private var stuckDeadline: Long = 0L

    /** The loop thread's task counter when close began; odd if it was inside a task. */
    @Volatile
    private var seqAtClose: Long = 0L

    /** Set when the loop gives up on its unfinished calls (it ended, or its thread is stuck). */
    @Volatile
    private var released: Throwable? = null

    /** How long calls in flight may take to finish after [close] cancels them; internal so tests can shorten it. */
    @Volatile
    internal var closeGraceNanos: Long = DEFAULT_CLOSE_GRACE_NANOS

    /** How long the shutdown callbacks may take together while closing; internal so tests can shorten it. */
    @Volatile
    internal var callbacksBudgetNanos: Long = CALLBACKS_NANOS

    /**
     * The coroutine dispatcher that runs blocks on this loop's thread. Usable from any coroutine
     * (`withContext(loop.dispatcher) { ... }`); using it starts the loop. Once the loop is closed, a coroutine
     * dispatched to it is cancelled and finishes on [Dispatchers.IO].
     */
    public val dispatcher: CoroutineDispatcher = LoopDispatcher(this)

    /**
     * The parent context of a call: the dispatcher alone. A call joins the supervisor explicitly when it must
     * (see LoopCall) and its failure goes to its caller, so it needs neither in its context, and with a
     * single element `parentContext + call` allocates one node instead of three.
     */
    internal val callContext: CoroutineContext = dispatcher

    /**
     * A supervisor scope on this loop: coroutines launched in it run on the loop thread, a failing one does
     * not cancel the others, its uncaught failure goes to [failureHandler], and [close] cancels them all.
     */
    public val scope: CoroutineScope =
        CoroutineScope(supervisorJob + dispatcher + CoroutineExceptionHandler { _, failure -> reportFailure(failure) })

    /**
     * What a blocking call into this loop does when made on a loop thread, where it would deadlock; see
     * [ReentryPolicy]. [ReentryPolicy.NEW_THREAD] unless set. Safe to change at any time from any thread.
     */
    @Volatile
    public var reentryPolicy: ReentryPolicy = ReentryPolicy.NEW_THREAD

    /**
     * Receives failures that escape a task onto the loop thread and uncaught failures of coroutines in
     * [scope], with the loop thread as its first argument. When `null` (the default) they are logged through
     * `System.Logger` at ERROR with their stack trace. A handler that throws is logged and the loop goes on;
     * one that throws a [VirtualMachineError] stops the loop, whose callers are then released with an error.
     */
    @Volatile
    public var failureHandler: Thread.UncaughtExceptionHandler? = null

    /**
     * How callers and the loop thread wait for each other; see [WaitStrategy]. [WaitStrategy.ADAPTIVE] unless
     * set. Safe to change at any time from any thread; it applies to waits that begin afterwards.
     */
    @Volatile
    public var waitStrategy: WaitStrategy = WaitStrategy.ADAPTIVE

    /**
     * The most blocking calls that run on worker threads at once ([runInWorkerThread]); 40 unless set. Further
     * calls wait for a slot in FIFO order, suspended, without blocking the loop. Safe to change at any time:
     * raising it lets waiting calls in at once, lowering it takes effect as running calls end.
     *
     * @throws IllegalArgumentException if set below 1
     */
    public var workerLimit: Int
        get() = workerPool.limiter.totalSlots
        set(value) {
            require(value >= 1) { "workerLimit must be at least 1, was $value" }
            workerPool.limiter.totalSlots = value
        }

    /**
     * How long one task may keep the loop thread busy before the watchdog reports a stall: once per stall,
     * through `System.Logger` at WARNING with the loop thread's stack at that moment (so the blocking line is
     * in it), in [stats], and as a JFR event `io.corobridge.Stall`. 100 ms unless set; `null` switches the
     * watchdog off for this loop. A task is a call's first step or one resumed step of a coroutine: a call
     * that suspends for long is not a stall, blocking code that holds the thread is.
     *
     * @throws IllegalArgumentException if set to zero or a negative duration
     */
    public var stallThreshold: java.time.Duration?
        get() = stallThresholdNanos.takeIf { it > 0 }?.let { java.time.Duration.ofNanos(it) }
        set(value) {
            require(value == null || (!value.isNegative && !value.isZero)) {
                "stallThreshold must be positive, or null to switch the watchdog off; was $value"
            }
            stallThresholdNanos = value?.nanosOr(Long.MAX_VALUE) ?: 0L
        }

    /**
     * This loop's named concurrency limits: define a tag once with `limits.create(tag, slots)`, then run code
     * under it with `limits.withConcurrencyLimit(tag) { }` (or the top-level [withConcurrencyLimit]).
     */
    public val limits: ConcurrencyLimits = ConcurrencyLimits()

    /** True once [close] has begun: from then on the loop refuses new calls. */
    public val isClosed: Boolean
        get() = state.get() != OPEN

    /**
     * Runs [block] on the loop and blocks the calling thread until it ends, returning its result or throwing
     * what it threw, unchanged (the caller's frames are attached as a suppressed exception).
     *
     * Called on a loop thread, where waiting would deadlock, [reentryPolicy] decides: run on a new thread, or
     * throw [IllegalStateException].
     *
     * Interrupting the waiting thread cancels the block, waits for it to finish cancelling (its `finally`
     * blocks have run), sets the interrupt flag again and throws [java.util.concurrent.CancellationException].
     *
     * @throws IllegalStateException if the loop is closed, or the call is re-entrant under [ReentryPolicy.FAIL]
     */
    @JvmSynthetic
    public fun <T> runSync(block: suspend () -> T): T = sync(block, NO_TIMEOUT)

    /**
     * Like [runSync], but gives up at the deadline: the block is cancelled, and once it has finished
     * cancelling this throws [TimeoutException]. A result that arrives before the cancellation takes effect is
     * returned.
     *
     * @throws IllegalArgumentException if [timeout] is not positive
     */
    @JvmSynthetic
    public fun <T> runSync(timeout: Duration, block: suspend () -> T): T {
        require(timeout.isPositive()) { "timeout must be positive, was $timeout" }
        return sync(block, boundedNanos(timeout.inWholeNanoseconds))
    }

    /**
     * Starts [block] on the loop and returns a future of its result at once, without blocking.
     *
     * The future completes on the thread that finishes the block, normally the loop thread, so dependent
     * stages added before it completes run there too: keep them short or give them an executor. It completes
     * exceptionally with what the block threw, unchanged. Cancelling or completing the future from outside
     * (including `orTimeout`) cancels the block. Waiting on it with `get`/`join` from this loop's own thread
     * throws [IllegalStateException] instead of deadlocking.
     *
     * @throws IllegalStateException if the loop is closed
     */
    @JvmSynthetic
    public fun <T> runAsync(block: suspend () -> T): CompletableFuture<T> = async(block)

    /**
     * [runSync] for a computation in continuation-passing form, as Java code writes it
     * (`c -> service.load(id, c)`). Checked exceptions it throws reach the caller undeclared and unwrapped.
     */
    public fun <T> runSync(call: ContinuationCall<T>): T = sync(call, NO_TIMEOUT)

    /**
     * [runSync] with a deadline, for a computation in continuation-passing form. On timeout the call is
     * cancelled and, once it has finished cancelling, [TimeoutException] is thrown.
     *
     * @throws IllegalArgumentException if [timeout] is zero or negative
     */
    @Throws(TimeoutException::class)
    public fun <T> runSync(timeout: java.time.Duration, call: ContinuationCall<T>): T =
        sync(call, timeoutNanos(timeout))

    /**
     * [runSync] with the coroutine run where [runOn] says: on the loop's thread ([RunOn.LOOP], what the other
     * forms do) or on the calling thread itself ([RunOn.CALLER_THREAD]). With a positive [timeout] the call
     * is cancelled at the deadline and, once it has finished cancelling, [TimeoutException] is thrown.
     *
     * @throws IllegalArgumentException if [timeout] is zero or negative
     * @since 0.2
     */
    @JvmSynthetic
    public fun <T> runSync(runOn: RunOn, timeout: Duration = Duration.INFINITE, block: suspend () -> T): T {
        require(timeout.isPositive()) { "timeout must be positive, was $timeout" }
        val nanos = if (timeout.isInfinite()) NO_TIMEOUT else boundedNanos(timeout.inWholeNanoseconds)
        return syncOn(runOn, block, nanos)
    }

    /**
     * [runSync] for a computation in continuation-passing form, with the coroutine run where [runOn] says.
     *
     * @since 0.2
     */
    public fun <T> runSync(runOn: RunOn, call: ContinuationCall<T>): T = syncOn(runOn, call, NO_TIMEOUT)

    /**
     * [runSync] with a deadline, for a computation in continuation-passing form, with the coroutine run where
     * [runOn] says. On timeout the call is cancelled and, once it has finished cancelling, [TimeoutException]
     * is thrown.
     *
     * @throws IllegalArgumentException if [timeout] is zero or negative
     * @since 0.2
     */
    @Throws(TimeoutException::class)
    public fun <T> runSync(runOn: RunOn, timeout: java.time.Duration, call: ContinuationCall<T>): T =
        syncOn(runOn, call, timeoutNanos(timeout))

    /** [runAsync] for a computation in continuation-passing form, as Java code writes it. */
    public fun <T> runAsync(call: ContinuationCall<T>): CompletableFuture<T> = async(call)

    /**
     * Starts [block] on the loop as a background task and returns at once: fire and forget, never lost.
     *
     * The loop holds the task strongly until it ends, even if the returned [LoopTask] is dropped. A failure is
     * reported to [failureHandler] (by default logged with its stack trace), never swallowed; cancellation is
     * not a failure. When the loop closes, background tasks get the grace period of [close] to finish before
     * they are cancelled.
     *
     * @throws IllegalStateException if the loop is closed
     */
    @JvmSynthetic
    public fun launch(block: suspend () -> Any?): LoopTask = backgroundTasks.launch(block)

    /** [launch] for a computation in continuation-passing form, as Java writes it. */
    public fun launch(call: ContinuationCall<*>): LoopTask = backgroundTasks.launch(call)

    /**
     * Runs blocking [block] on one of this loop's worker threads and suspends until it returns, with its
     * result or what it threw: the way to call blocking Java code from a coroutine without stalling the loop
     * (Prefect's `run_sync_in_worker_thread`).
     *
     * At most [workerLimit] blocks run at once; a call beyond that suspends, first come first served, until a
     * slot is free. Worker threads (daemons named `corobridge-worker-<loop>-<n>`) are made when needed and end
     * after 10 s idle, or when the loop closes. Inside [block], [RunContext.isInWorkerThread] is true, and
     * [runOnLoop] (or `Bridge.sync`) runs suspend code on the loop, blocking only this worker.
     *
     * Cancelling the calling coroutine abandons the worker at once: the coroutine resumes with
     * [CancellationException] right away, while the thread finishes [block] undisturbed (it is not
     * interrupted) and its late result or failure is discarded (a failure is logged at DEBUG). It keeps its slot
     * until it really ends, so no more than [workerLimit] threads ever run blocking code; [block] can check
     * [RunContext.isAbandoned] to stop early. Closing the loop interrupts workers still running.
     *
     * @throws IllegalStateException if the loop is closed
     */
    public suspend fun <T> runInWorkerThread(block: () -> T): T = workerPool.run(block)

    /**
     * [runInWorkerThread] for Java: a computation in continuation-passing form that runs [block] on a worker
     * thread when it is started, for use with `runSync`, `runAsync`, gathers and background tasks. Checked
     * exceptions [block] throws reach the caller unchanged.
     */
    public fun <T> workerCall(block: java.util.concurrent.Callable<out T>): ContinuationCall<T> {
        val worker: suspend () -> T = { runInWorkerThread(block::call) }
        return object : ContinuationCall<T> {
            override fun invoke(continuation: kotlin.coroutines.Continuation<T>): Any? =
                worker.startCoroutineUninterceptedOrReturn(continuation)
        }
    }

    /**
     * Implements the Java interface [facadeInterface] over [implementation], an object with suspend methods,
     * so Java code calls them as ordinary methods. For a suspend `load(id: String): User`, the interface may
     * declare `User load(String id)`, which blocks on this loop like [runSync], and
     * `CompletableFuture<User> loadAsync(String id)` (or `CompletionStage`), which returns at once like
     * [runAsync]. Default methods run as written; `toString`, `equals` and `hashCode` are the proxy's own.
     *
     * Every abstract method is matched when the facade is made, by name, parameter types (boxing allowed) and
     * result type; all mismatches are reported together. What the suspend method throws reaches the caller
     * unchanged if it is unchecked or declared by the interface method, else wrapped in
     * [java.lang.reflect.UndeclaredThrowableException].
     *
     * @throws IllegalArgumentException if [facadeInterface] is not an interface, or lists every method that
     *   has no matching suspend method, matches several overloads, or has incompatible types
     */
    public fun <F : Any> facade(facadeInterface: Class<F>, implementation: Any): F =
        io.corobridge.core.internal.Facades.create(this, facadeInterface, implementation, RunOn.LOOP)

    /**
     * [facade] whose blocking methods run their calls where [runOn] says: [RunOn.CALLER_THREAD] runs each on the
     * calling thread, as `runSync(RunOn.CALLER_THREAD, ..)` does, for an implementation that keeps no state
     * bound to the loop (an HTTP client, say). Methods that return a future still run on the loop.
     *
     * @throws IllegalArgumentException as [facade] does
     * @since 0.2
     */
    public fun <F : Any> facade(facadeInterface: Class<F>, implementation: Any, runOn: RunOn): F =
        io.corobridge.core.internal.Facades.create(this, facadeInterface, implementation, runOn)

    /**
     * A snapshot of the loop's state, readable at any time from any thread: tasks queued, calls in flight,
     * background tasks, worker threads (alive, busy, waiting for a slot), the stalls the watchdog saw, and
     * each concurrency limit's occupancy.
     */
    public fun stats(): LoopStats {
        val started = (thread.taskSeq + 1) / 2
        return LoopStats(
            queuedTasks = maxOf(0L, callsStarted.sum() + otherTasksAdded.sum() - started),
            callsInFlight = maxOf(0L, callsStarted.sum() - callsEnded.sum()),
            backgroundTasks = backgroundTasks.count,
            workerThreads = workerPool.threadCount,
            workersBusy = workerPool.limiter.heldCount,
            workersWaiting = workerPool.limiter.waitingCount,
            workerLimit = workerLimit,
            stalls = stallStats.stalls,
            longestStall = java.time.Duration.ofNanos(stallStats.longestNanos),
            limits = limits.stats(),
        )
    }

    /**
     * Registers [callback] to run exactly once when the loop closes, by [close] or at JVM exit for the
     * default loop: on the loop thread, after the background tasks have ended, in reverse order of
     * registration. One that throws is reported to [failureHandler] and the others still run.
     *
     * @throws IllegalStateException if the loop is closed
     */
    @JvmSynthetic
    public fun onShutdown(callback: suspend () -> Unit) {
        shutdownCallbacks.add(callback)
    }

    /** [onShutdown] for a plain [Runnable], as Java writes it. */
    public fun onShutdown(callback: Runnable) {
        shutdownCallbacks.add(callback)
    }

    /**
     * Opens a [GatherGroup] on this loop: calls forked into it run on the loop and are joined together.
     *
     * @throws IllegalStateException if the loop is closed
     */
    public fun <T> openGather(): GatherGroup<T> {
        checkOpen()
        return GatherGroup(this)
    }

    /**
     * Closes the loop, giving background tasks 5 seconds to finish; see `close(Duration)`.
     *
     * @throws IllegalStateException on [default], which the JVM shutdown hook closes
     */
    override fun close() {
        close(DEFAULT_GRACE)
    }

    /**
     * Closes the loop, in this order:
     * 1. refuses new work (calls, background tasks, gather groups, shutdown callbacks) with
     *    [IllegalStateException];
     * 2. cancels the calls in flight; their callers get a [java.util.concurrent.CancellationException] that
     *    names the loop once each call has finished cancelling (a call that ignores cancellation for 5 seconds
     *    is abandoned and its caller released with an [IllegalStateException]);
     * 3. lets background tasks run for up to [grace], then cancels those still running and gives them 5
     *    seconds to finish cancelling; logs how many were cancelled, and names those that ignored it (they
     *    are abandoned where they are);
     * 4. runs the shutdown callbacks, newest first, each once, within 5 seconds; those the loop thread cannot
     *    run (one before them has not finished, or the thread is stuck) run on the thread that ends the close;
     * 5. ends the thread and interrupts worker threads still running blocking code.
     *
     * Whatever user code does, this returns within [grace] + 10 seconds, plus up to 1 second for the thread to
     * end; a loop thread stuck in blocking code since before the close releases its callers after [grace] + 5
     * seconds. Only a shutdown callback that blocks forever on this thread can hold it longer.
     *
     * Blocks until the thread has ended (not interruptibly: an interrupt is kept for later), except when
     * called on the loop thread itself (or in a call re-entered from it, which runs on a thread of its own
     * while the loop thread waits for it), where it returns at once and the loop finishes closing after the
     * current task. Closing twice is harmless.
     *
     * @throws IllegalArgumentException if [grace] is negative
     * @throws IllegalStateException on [default], which the JVM shutdown hook closes
     */
    public fun close(grace: java.time.Duration) {
        require(!grace.isNegative) { "grace must not be negative, was $grace" }
        check(!isDefault) {
            "the default loop is shared by the whole process and closed by a JVM shutdown hook; " +
                "use RunSyncLoop.create(name) for a loop whose lifetime you control"
        }
        shutdown(minOf(grace.nanosOr(UNBOUNDED_NANOS), UNBOUNDED_NANOS))
    }

    override fun toString(): String = "RunSyncLoop(\"$name\", ${STATE_NAMES[state.get()]})"

    // ---- internals shared with io.corobridge.core.internal ----

    internal fun isLoopThread(): Boolean = Thread.currentThread() === thread

    /**
     * Closes the loop: `close(Duration)` without the default-loop guard (the shutdown hook uses it).
     * [backgroundGraceNanos] is how long background tasks may still run.
     */
    internal fun shutdown(backgroundGraceNanos: Long = DEFAULT_GRACE_NANOS) {
        // Everything the loop thread may still do while closing is bounded: background tasks their grace,
        // cancelled calls and tasks closeGraceNanos, shutdown callbacks callbacksBudgetNanos. Past that it stops
        // regardless.
        val budget = saturatedAdd(backgroundGraceNanos, closeGraceNanos + callbacksBudgetNanos)
        // The deadline must be written before the state leaves OPEN (the loop reads it once it sees CLOSING),
        // and only while it is still OPEN, so a second close() does not move an earlier deadline.
        if (state.get() == OPEN) {
            val now = System.nanoTime()
            callsDeadline = now + closeGraceNanos
            closeDeadline = saturatedAdd(now, budget)
            stuckDeadline = saturatedAdd(now, saturatedAdd(backgroundGraceNanos, closeGraceNanos))
            seqAtClose = thread.taskSeq
        }
        if (state.compareAndSet(OPEN, CLOSING)) {
            val closing = CancellationException("loop \"$name\" is closing")
            supervisorJob.cancel(closing)
            cancelSuspended(closing)
            // Calls on their callers' threads (RunOn.CALLER_THREAD) may be in flight although the thread never ran.
            val idle = backgroundTasks.count == 0 && shutdownCallbacks.isEmpty && supervisorJob.children.none()
            if (idle && started.compareAndSet(false, true)) {
                terminate(null) // the thread never ran and nothing is left to do: finish closing here
            } else {
                // Published before it starts: the loop must never see it running yet unpublished (and stop).
                val sequence = CoroutineScope(dispatcher).launch(start = CoroutineStart.LAZY) {
                    finishClosing(backgroundGraceNanos)
                }
                closingSequence = sequence
                sequence.invokeOnCompletion { thread.wake() }
                sequence.start()
                supervisorJob.invokeOnCompletion { thread.wake() }
                startIfNeeded()
                thread.wake()
            }
        }
        if (!isOwnOrReentrantThread()) {
            awaitTermination()
            awaitWorkers()
        }
    }

    /** True for the throwaway loops that rehearse closing (see DefaultLoop): their close warns of nothing. */
    private var isRehearsal = false

    /** For a loop made to run a re-entrant call (see [reenter]): the loop whose thread made that call. */
    @Volatile
    private var reentryParent: RunSyncLoop? = null

    /**
     * True on this loop's thread, or on a thread running a call re-entered from it (at any depth): this loop's
     * thread waits for that call, so waiting there for the loop to end would only end at the stuck deadline.
     */
    private fun isOwnOrReentrantThread(): Boolean {
        var loop = (Thread.currentThread() as? LoopThread)?.loop
        while (loop != null) {
            if (loop === this) return true
            loop = loop.reentryParent
        }
        return false
    }

    /**
     * After the loop thread ended (which stopped the pool and interrupted workers still running): waits for
     * the worker threads to end too, up to the calls' grace, and names those that do not.
     */
    private fun awaitWorkers() {
        if (Thread.currentThread() is WorkerThread && (Thread.currentThread() as WorkerThread).loop === this) return
        // Within close's budget: as long as workers get after being interrupted, but not past the budget's end.
        val left = saturatedAdd(closeDeadline, STUCK_MARGIN_NANOS) - System.nanoTime()
        val stuck = workerPool.awaitStopped(maxOf(0L, minOf(closeGraceNanos, left)))
        if (stuck.isEmpty()) return
        logger.log(
            System.Logger.Level.WARNING,
            "loop \"$name\" closed, but ${stuck.size} worker thread(s) still run blocking code that ignored the " +
                "interrupt; they are daemon threads and end when that code returns: " +
                stuck.joinToString("; ") { "\"${it.name}\" at ${it.stackTrace.take(5).joinToString(" <- ")}" }
        )
    }

    /**
     * On the loop thread while closing: background tasks get their grace, then are cancelled and get
     * closeGraceNanos to finish cancelling, then the callbacks run. Every wait is bounded, so the callbacks run
     * whatever the tasks do.
     */
    private suspend fun finishClosing(backgroundGraceNanos: Long) {
        val finish = backgroundTasks.finish(backgroundGraceNanos, closeGraceNanos)
        if (finish.cancelled > 0 && !isRehearsal) {
            val abandoned = if (finish.abandoned.isEmpty()) "" else {
                "; ${finish.abandoned.size} of them ignored the cancellation for ${describeNanos(closeGraceNanos)} " +
                    "and were abandoned where they are: " + finish.abandoned.joinToString("; ")
            }
            logger.log(
                System.Logger.Level.WARNING,
                "loop \"$name\" closed: ${finish.cancelled} background task(s) were still running after the grace " +
                    "period of ${describeNanos(backgroundGraceNanos)} and were cancelled$abandoned"
            )
        }
        shutdownCallbacks.runAll()
    }

    /**
     * Runs, on the calling thread, the shutdown callbacks the loop thread could not run ([why]); each callback
     * still runs once (see ShutdownCallbacks). Suspending callbacks get the callbacks' budget.
     */
    private fun runLeftoverCallbacks(why: String) {
        val left = shutdownCallbacks.left
        if (left == 0) return
        val stuckIn = shutdownCallbacks.running?.let { "; the callback ${describe(it)} has not finished" } ?: ""
        logger.log(
            System.Logger.Level.WARNING,
            "loop \"$name\": $why$stuckIn, so its $left remaining shutdown callback(s) run on thread " +
                "\"${Thread.currentThread().name}\""
        )
        // runBlocking would throw at once on an interrupted thread (one of our workers closing the loop is one).
        val interrupted = Thread.interrupted()
        try {
            runBlocking { withTimeoutOrNull(callbacksBudgetNanos.nanoseconds) { shutdownCallbacks.runAll() } }
        } finally {
            if (interrupted) Thread.currentThread().interrupt()
        }
    }

    /**
     * Asked by the loop thread while closing: may it stop now? Once the closing sequence (background tasks,
     * callbacks) is done and nothing is queued: when every cancelled call has ended, or their grace has
     * passed (the stragglers' callers are then released). In any case at the overall deadline.
     */
    internal fun mayStop(queueEmpty: Boolean): Boolean {
        val now = System.nanoTime()
        if (now - closeDeadline >= 0) return true
        // Every close that reaches the loop thread publishes a closing sequence; until it has, the loop must
        // not take "none yet" for "done" (the callbacks would never run).
        return queueEmpty && closingSequence?.isCompleted == true &&
            ((supervisorJob.isCompleted && !suspendedCalls.anyUnfinished()) || now - callsDeadline >= 0)
    }

    /** How long the loop may park while closing: until the next deadline that could let it stop. */
    internal fun closeParkNanos(): Long {
        val now = System.nanoTime()
        val next = if (now - callsDeadline < 0) callsDeadline else closeDeadline
        return maxOf(1L, next - now)
    }

    /** The exception for a call made or still queued after the loop closed. */
    internal fun closedException(): IllegalStateException =
        IllegalStateException("loop \"$name\" is closed; it accepts no new calls")

    /**
     * If the loop has given up on its unfinished calls, the exception to release one more caller with (one
     * whose call became reachable only after the loop released the others); else null.
     */
    internal fun releaseReason(): Throwable? = released?.let { IllegalStateException(it.message, it.cause) }

    /** Reports a failure that escaped onto the loop thread; see [failureHandler]. Never throws but fatal errors. */
    internal fun reportFailure(failure: Throwable) {
        val handler = failureHandler
        if (handler == null) {
            try {
                logger.logFailure(System.Logger.Level.ERROR, "uncaught failure on loop \"$name\"", failure)
            } catch (missing: LinkageError) {
                // The logging code cannot be loaded any more (the class loader was closed): standard error is left.
                System.err.println("corobridge: uncaught failure on loop \"$name\"")
                failure.printStackTrace()
            }
            return
        }
        try {
            handler.uncaughtException(thread, failure)
        } catch (fatal: VirtualMachineError) {
            if (fatal !== failure) fatal.addSuppressed(failure)
            throw fatal
        } catch (broken: Throwable) {
            if (broken !== failure) broken.addSuppressed(failure)
            logger.logFailure(System.Logger.Level.ERROR, "the failure handler of loop \"$name\" threw", broken)
        }
    }

    /**
     * Ends the loop, on its thread as the thread's last act (or on the closing thread if it never started):
     * completes the calls that never started, releases the callers of those still running, and moves any
     * other pending task to [Dispatchers.IO] so its coroutine can finish cancelling.
     */
    internal fun terminate(fatal: Throwable?) {
        // Whatever fails in here (a class that can no longer be loaded, say), the closing thread must hear that
        // the loop has ended: the latch falls in a finally.
        try {
            deathCause = fatal
            state.set(CLOSED)
            // Order matters: calls that never started are completed as refused, and the callers of calls still
            // running are released, before anything can resume those calls elsewhere.
            val leftovers = ArrayList<DispatchedTask>()
            refuseAll(thread.queue.drain(), leftovers)
            releaseUnfinished(unfinishedException(fatal))
            if (fatal != null) {
                val died = CancellationException("loop thread \"${thread.name}\" died", fatal)
                supervisorJob.cancel(died)
                cancelSuspended(died)
            }
            // What is left are steps of coroutines that did not finish: let them finish cancelling elsewhere.
            for (step in leftovers) moveOff(step.context, step.task)
            workerPool.stop()
            if (fatal != null) reportDeath(fatal)
            runLeftoverCallbacks(if (fatal != null) "its thread died" else "it stopped at the end of its close budget")
        } finally {
            terminated.countDown()
        }
    }

    private fun reportDeath(fatal: Throwable) {
        val message = "loop thread \"${thread.name}\" died; its callers were released"
        try {
            logger.logFailure(System.Logger.Level.ERROR, message, fatal)
        } catch (missing: LinkageError) {
            // The logging code itself cannot be loaded (the class loader was closed): standard error is left.
            System.err.println("corobridge: $message")
            fatal.printStackTrace()
        }
    }

    /** Why the loop thread died, if it did; set before the state becomes closed. */
    @Volatile
    internal var deathCause: Throwable? = null
        private set

    // ---- private ----

    private fun <T> sync(body: Any, timeoutNanos: Long): T =
        when (val current = Thread.currentThread()) {
            is LoopThread -> reenter(body, timeoutNanos)
            is WorkerThread -> current.lendingSlot { syncHere(body, timeoutNanos) }
            else -> syncHere(body, timeoutNanos)
        }

    private fun <T> syncOn(runOn: RunOn, body: Any, timeoutNanos: Long): T =
        when (runOn) {
            RunOn.LOOP -> sync(body, timeoutNanos)
            // A worker thread keeps its slot: it runs the call itself rather than waiting for the loop.
            RunOn.CALLER_THREAD ->
                if (Thread.currentThread() is LoopThread) reenter(body, timeoutNanos) else syncHere(body, timeoutNanos, true)
        }

    private fun <T> syncHere(body: Any, timeoutNanos: Long, onCaller: Boolean = false): T {
        if (Thread.currentThread().isInterrupted) {
            throw java.util.concurrent.CancellationException(
                "the calling thread was interrupted before the call on loop \"$name\" started; it was not run"
            )
        }
        checkOpen()
        val event = CallEvent()
        event.begin()
        val call = if (onCaller) CallerThreadCall(this, body) else BlockingCall<T>(this, body)
        callsStarted.increment()
        try {
            if (call is CallerThreadCall) return call.runHere(timeoutNanos)
            submit(call)
            return call.await(timeoutNanos)
        } finally {
            callsEnded.increment()
            if (event.shouldCommit()) {
                event.loop = name
                event.commit()
            }
        }
    }

    /** Counts a future call's end (see LoopFuture); blocking calls count their own. */
    internal fun futureCallEnded() {
        callsEnded.increment()
    }

    private fun <T> async(body: Any): CompletableFuture<T> {
        checkOpen()
        callsStarted.increment()
        val call = FutureCall<T>(this, body)
        submit(call)
        return call.future
    }

    /** Submits a call made elsewhere in the module (a background task's). */
    internal fun submitCall(call: LoopCall<*>) {
        checkOpen()
        otherTasksAdded.increment()
        submit(call)
    }

    /**
     * [runSync] for asyncDispatch, which has warned about the call site already: on a loop thread the re-entry
     * policy applies without a warning of its own.
     */
    internal fun <T> runSyncWarned(block: suspend () -> T): T =
        if (Thread.currentThread() is LoopThread) reenter(block, NO_TIMEOUT, warn = false) else sync(block, NO_TIMEOUT)

    private fun <T> reenter(body: Any, timeoutNanos: Long, warn: Boolean = true): T {
        checkOpen() // a closing loop refuses the call whichever thread it would run on (a shutdown callback's, say)
        val site = CallSites.current()
        val here = Thread.currentThread().name
        val problem = "a blocking call into loop \"$name\" was made on loop thread \"$here\" at $site"
        val advice = "From coroutine code call the suspend function directly; from Java use the future-returning " +
            "form (Bridge.async) and add a dependent stage instead of waiting."
        when (reentryPolicy) {
            ReentryPolicy.FAIL -> throw IllegalStateException(
                "$problem; waiting there would deadlock, because a loop cannot run a call while its own thread " +
                    "waits for it. $advice (Set reentryPolicy = NEW_THREAD to run such calls on a new thread.)"
            )
            ReentryPolicy.NEW_THREAD -> {
                if (warn && CallSites.firstTime(site)) {
                    logger.log(
                        System.Logger.Level.WARNING,
                        "$problem; it runs on a new thread with its own event loop instead of deadlocking. " +
                            "$advice This warning is given once per call site."
                    )
                }
                val helper = RunSyncLoop("$name-reentry-${reentries.incrementAndGet()}", isDefault = false)
                helper.failureHandler = failureHandler
                helper.reentryParent = this
                try {
                    return helper.syncHere(body, timeoutNanos)
                } finally {
                    helper.shutdown()
                }
            }
        }
    }

    internal fun checkOpen() {
        if (state.get() != OPEN) throw closedException()
    }

    private fun submit(call: LoopCall<*>) {
        thread.enqueue(call)
        startIfNeeded()
        refuseIfEnded()
    }

    /**
     * The loop may have ended after a producer's state check; then either its last drain took the producer's
     * task, or the producer takes everything still queued here. Never both, never neither.
     */
    private fun refuseIfEnded() {
        if (state.get() == CLOSED) refuseQueued()
    }

    /** Refuses every task pushed and not yet taken by the loop thread; safe from any thread. */
    private fun refuseQueued() {
        val leftovers = ArrayList<DispatchedTask>()
        refuseAll(thread.queue.takePushed(), leftovers)
        for (step in leftovers) moveOff(step.context, step.task)
    }

    /** Completes the calls in [chain] as refused; collects the dispatched steps into [steps]. */
    private fun refuseAll(chain: QueuedTask?, steps: MutableList<DispatchedTask>) {
        var task = chain
        while (task != null) {
            val next = task.nextInQueue
            task.nextInQueue = null
            when (task) {
                is LoopCall<*> -> task.reject(closedException())
                is DispatchedTask -> steps.add(task)
            }
            task = next
        }
    }

    /** Runs a coroutine step dispatched to the closed loop elsewhere, after cancelling its coroutine. */
    private fun moveOff(context: CoroutineContext, task: Runnable) {
        context.cancel(CancellationException("loop \"$name\" is closed; the coroutine finishes on Dispatchers.IO"))
        Dispatchers.IO.dispatch(context, task)
    }

    internal fun dispatch(context: CoroutineContext, task: Runnable) {
        if (state.get() == CLOSED) {
            moveOff(context, task)
            return
        }
        otherTasksAdded.increment()
        thread.enqueue(DispatchedTask(task, context))
        startIfNeeded()
        refuseIfEnded()
    }

    private fun startIfNeeded() {
        if (!started.get() && started.compareAndSet(false, true)) thread.start()
    }

    /**
     * Waits for the loop thread to end: until the close budget's end (plus a margin), or only until
     * [stuckDeadline] if by then the thread is still inside the task it was running when close began: such a
     * task has ignored the close all along, and waiting longer would only make close slower.
     */
    private fun awaitTermination() {
        val ended = LibraryThreads.awaitUninterruptibly(terminated, stuckDeadline - System.nanoTime()) || run {
            val seq = thread.taskSeq
            val stuckSinceClose = seq == seqAtClose && seq and 1L == 1L
            !stuckSinceClose && LibraryThreads.awaitUninterruptibly(
                terminated, saturatedAdd(closeDeadline, STUCK_MARGIN_NANOS) - System.nanoTime()
            )
        }
        if (ended) {
            // The latch falls in the thread's last act; wait for the thread itself to be gone too.
            LibraryThreads.joinUninterruptibly(thread, STUCK_MARGIN_NANOS)
            return
        }
        // The loop thread is stuck inside a task (blocking code on the loop) and cannot finish closing.
        // Release the callers now; the thread ends as soon as that task returns.
        val stuck = IllegalStateException("loop thread \"${thread.name}\" is stuck in a task and cannot finish the call")
        stuck.stackTrace = thread.stackTrace
        logger.log(
            System.Logger.Level.WARNING,
            "loop \"$name\" could not finish closing within its budget: its thread is blocked in a task (stack " +
                "attached) that ignores cancellation; its callers were released, its workers interrupted, and the " +
                "thread ends when that task returns",
            stuck
        )
        refuseQueued()
        releaseUnfinished(IllegalStateException("loop \"$name\" closed while its thread was stuck in a task", stuck))
        workerPool.stop() // the loop thread's last act would have; it may never come
        runLeftoverCallbacks("its thread is stuck in a task")
    }

    /** Releases the callers of every call still unfinished, each with its own copy of [reason]. */
    private fun releaseUnfinished(reason: Throwable) {
        // Published first: a caller that attaches its call after this sees it and releases itself.
        released = reason
        for (child in supervisorJob.children.toList()) {
            if (child is LoopCall<*>) child.abort(IllegalStateException(reason.message, reason.cause))
        }
        for (call in latecomers) call.abort(IllegalStateException(reason.message, reason.cause))
        suspendedCalls.forEachUnfinished { it.abort(IllegalStateException(reason.message, reason.cause)) }
    }

    /**
     * Blocking calls that suspended on the loop thread; closing the loop cancels them and waits for them as it
     * does for the supervisor's children. See SuspendedCalls.
     */
    internal val suspendedCalls = SuspendedCalls()

    /** Keeps [call], which just suspended on the loop thread, where closing the loop finds it; loop thread only. */
    internal fun registerSuspended(call: LoopCall<*>) {
        suspendedCalls.add(call)
        // A close that began meanwhile may have walked the list before this call joined it: cancel it here.
        if (isClosed) call.cancel(CancellationException("loop \"$name\" is closing"))
    }

    private fun cancelSuspended(cause: CancellationException) {
        suspendedCalls.forEachUnfinished { it.cancel(cause) }
    }

    /** Calls that started while the loop was closing and could not join the supervisor; see LoopCall.attachToLoop. */
    private val latecomers: MutableSet<LoopCall<*>> = java.util.concurrent.ConcurrentHashMap.newKeySet()

    /** Makes sure the caller of [call] is released when the loop gives up on its unfinished calls. */
    internal fun keepUntilReleased(call: LoopCall<*>) {
        latecomers.add(call)
        releaseReason()?.let(call::abort) // the release may have gone by already
    }

    private fun unfinishedException(fatal: Throwable?): IllegalStateException =
        if (fatal != null) {
            IllegalStateException("loop thread \"${thread.name}\" died before the call finished", fatal)
        } else {
            IllegalStateException(
                "loop \"$name\" closed before the call finished (calls in flight get " +
                    "${describeNanos(closeGraceNanos)} to finish after being cancelled)"
            )
        }

    private fun timeoutNanos(timeout: java.time.Duration): Long {
        require(!timeout.isNegative && !timeout.isZero) { "timeout must be positive, was $timeout" }
        return boundedNanos(timeout.nanosOr(Long.MAX_VALUE))
    }

    /** A timeout so long that a deadline would overflow is no deadline at all. */
    private fun boundedNanos(nanos: Long): Long = if (nanos >= UNBOUNDED_NANOS) NO_TIMEOUT else nanos

    /** Holds the default loop, created on first use (class initialisation makes that thread-safe and once). */
    private object DefaultLoop {
        /** Classes a close needs only when something fails, which a rehearsal does not make happen. */
        private val FAILURE_PATH_CLASSES = listOf(
            "io.corobridge.core.internal.SafeLogKt",
            "kotlinx.coroutines.CoroutinesInternalError",
            "kotlinx.coroutines.CoroutineExceptionHandlerKt",
            "kotlinx.coroutines.CompletionHandlerException",
            "kotlinx.coroutines.TimeoutCancellationException",
        )

        val loop: RunSyncLoop = RunSyncLoop("default", isDefault = true).also { loop ->
            rehearseClosing()
            try {
                Runtime.getRuntime().addShutdownHook(
                    LibraryThreads.create { Thread(LibraryThreads.group, { closeAtExit(loop) }, "corobridge-shutdown-default") }
                )
            } catch (_: IllegalStateException) {
                // The JVM is already shutting down: no hook can be added, and the daemon loop thread dies
                // with the JVM. Nothing is lost that a hook could have saved.
            }
        }

        /*
         * The shutdown hook may run after the class loader that loaded corobridge has been closed: `mvn exec:java`
         * closes the program's loader when main returns, a container closes an application's when it undeploys
         * it. From then on no class can be loaded, and a close that needs one it has not used yet fails with
         * NoClassDefFoundError. Then the hook says so in one line and the JVM exits (the loop thread is a daemon).
         */
        /**
         * Loads what closing needs while loading still works: runs the closing protocol twice on throwaway
         * loops (one with a call in flight, a background task and a callback, closed with a grace that runs
         * out; one with only a callback, closed with the default grace), and loads the failure paths' classes.
         */
        private fun rehearseClosing() {
            try {
                val loader = RunSyncLoop::class.java.classLoader
                for (name in FAILURE_PATH_CLASSES) Class.forName(name, true, loader)
                val busy = RunSyncLoop("default-rehearsal", isDefault = false)
                busy.isRehearsal = true
                busy.onShutdown { }
                busy.launch { kotlinx.coroutines.awaitCancellation() }
                val inFlight = busy.runAsync<Unit> { kotlinx.coroutines.awaitCancellation() }
                busy.runAsync { }.join()
                busy.shutdown(1L)
                check(inFlight.isCompletedExceptionally) { "the rehearsal's call outlived its close" }
                val quiet = RunSyncLoop("default-rehearsal", isDefault = false)
                quiet.isRehearsal = true
                quiet.onShutdown { }
                quiet.runAsync { kotlinx.coroutines.yield() }.join()
                quiet.shutdown()
            } catch (e: Exception) {
                logger.logFailure(
                    System.Logger.Level.WARNING,
                    "could not rehearse closing the default loop; closing it at JVM exit may fail if the " +
                        "application's class loader is closed by then",
                    e,
                )
            }
        }

        private fun closeAtExit(loop: RunSyncLoop) {
            try {
                loop.shutdown()
            } catch (missing: LinkageError) {
                // Standard error, not the logger: the logger's classes may be the ones that cannot be loaded.
                System.err.println(
                    "corobridge: the default loop could not finish closing at JVM exit: a class it needed could " +
                        "not be loaded ($missing); the application's class loader was closed before the JVM's " +
                        "shutdown hooks ran"
                )
            }
        }
    }

    public companion object {
        private const val OPEN = 0
        private const val CLOSING = 1
        private const val CLOSED = 2
        private val STATE_NAMES = arrayOf("open", "closing", "closed")
        private const val NO_TIMEOUT = 0L
        private const val UNBOUNDED_NANOS = Long.MAX_VALUE / 4
        private val DEFAULT_CLOSE_GRACE_NANOS = TimeUnit.SECONDS.toNanos(5)
        private val DEFAULT_GRACE: java.time.Duration = java.time.Duration.ofSeconds(5)
        private val DEFAULT_GRACE_NANOS = DEFAULT_GRACE.toNanos()
        private val CALLBACKS_NANOS = TimeUnit.SECONDS.toNanos(5)
        private val DEFAULT_STALL_NANOS = TimeUnit.MILLISECONDS.toNanos(100)

        private fun saturatedAdd(a: Long, b: Long): Long = if (a > Long.MAX_VALUE - b) Long.MAX_VALUE / 2 else a + b
        private val STUCK_MARGIN_NANOS = TimeUnit.SECONDS.toNanos(1)
        private val logger: System.Logger = System.getLogger(RunSyncLoop::class.java.name)

        /**
         * The process-wide loop, named `default`, created on first use and closed by a JVM shutdown hook.
         * Calling [close] on it throws.
         */
        @JvmStatic
        public val default: RunSyncLoop
            get() = DefaultLoop.loop

        /**
         * Creates a loop of its own, named [name]; the caller closes it. Its thread starts on first use.
         *
         * @throws IllegalArgumentException if [name] is blank
         */
        @JvmStatic
        public fun create(name: String): RunSyncLoop {
            require(name.isNotBlank()) { "name must not be blank, was \"$name\"" }
            return RunSyncLoop(name, isDefault = false)
        }
    }
}
