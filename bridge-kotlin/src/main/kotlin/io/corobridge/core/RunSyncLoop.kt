package io.corobridge.core

import io.corobridge.core.internal.CallBodies
import io.corobridge.core.internal.ClosingProtocol
import io.corobridge.core.internal.Facades
import io.corobridge.core.internal.KotlinRuntime
import io.corobridge.core.internal.LibraryThreads
import io.corobridge.core.internal.LoopCounters
import io.corobridge.core.internal.LoopDispatcher
import io.corobridge.core.internal.LoopThread
import io.corobridge.core.internal.NO_TIMEOUT
import io.corobridge.core.internal.DefaultLoop
import io.corobridge.core.internal.WorkerPool
import io.corobridge.core.internal.boundedNanos
import io.corobridge.core.internal.callAsync
import io.corobridge.core.internal.callBlocking
import io.corobridge.core.internal.callBlockingOn
import io.corobridge.core.internal.nanosOr
import io.corobridge.core.internal.reportFailure
import io.corobridge.core.internal.timeoutNanos
import java.util.concurrent.CompletableFuture
import java.util.concurrent.TimeUnit
import java.util.concurrent.TimeoutException
import java.util.concurrent.atomic.AtomicInteger
import kotlin.coroutines.CoroutineContext
import kotlin.time.Duration
import kotlinx.coroutines.CompletableJob
import kotlinx.coroutines.CoroutineDispatcher
import kotlinx.coroutines.CoroutineExceptionHandler
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.SupervisorJob

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
 *
 * @since 0.1
 */
public class RunSyncLoop internal constructor(
    /** The name given at creation; the thread is called `corobridge-loop-<name>`. */
    public val name: String,
    internal val isDefault: Boolean,
) : AutoCloseable {

    init {
        KotlinRuntime.warnIfOlder() // first: an older kotlin-stdlib may fail below with a bare NoClassDefFoundError
    }

    // The loop's parts, each in a file of its own under internal/: its thread and queue (LoopThread, TaskQueue),
    // its lifecycle and closing protocol (ClosingProtocol), how calls are submitted and refused (Submission),
    // re-entry from a loop thread (Reentry), failure reports (FailureReports) and statistics (LoopCounters).
    internal val thread: LoopThread = LibraryThreads.create { LoopThread(this, "corobridge-loop-$name") }
    internal val closing: ClosingProtocol = ClosingProtocol(this)
    internal val supervisorJob: CompletableJob = SupervisorJob()
    internal val backgroundTasks: BackgroundTasks = BackgroundTasks(this)
    internal val shutdownCallbacks: ShutdownCallbacks = ShutdownCallbacks(this)
    internal val workerPool: WorkerPool = WorkerPool(this)
    internal val counters: LoopCounters = LoopCounters()

    @Volatile
    internal var stallThresholdNanos: Long = DEFAULT_STALL_NANOS
        private set

    /** Callers spinning for their answer now (see Spinning). */
    internal val spinningCallers: AtomicInteger = AtomicInteger()

    /** Callers' spins in a row that ended without an answer, up to Spinning.MISSES_TO_PAUSE. */
    @Volatile
    internal var spinMisses: Int = 0

    /**
     * What the concepts built on the loop keep per loop, by a key of their own (its named limits, see
     * ConcurrencyLimits.kt): the loop holds it and knows nothing else of it.
     */
    internal val attachments: java.util.concurrent.ConcurrentHashMap<Any, Any> = java.util.concurrent.ConcurrentHashMap()

    /** Loops made so far to run re-entrant calls (see Reentry), for their names. */
    internal val reentries: AtomicInteger = AtomicInteger()

    /** For a loop made to run a re-entrant call (see Reentry): the loop whose thread made that call. */
    @Volatile
    internal var reentryParent: RunSyncLoop? = null

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

    /** True once [close] has begun: from then on the loop refuses new calls. */
    public val isClosed: Boolean
        get() = closing.isClosed

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
     * @since 0.1
     */
    @JvmSynthetic
    public fun <T> runSync(block: suspend () -> T): T = callBlocking(block, NO_TIMEOUT)

    /**
     * Like [runSync], but gives up at the deadline: the block is cancelled, and once it has finished
     * cancelling this throws [TimeoutException]. A result that arrives before the cancellation takes effect is
     * returned.
     *
     * @throws IllegalArgumentException if [timeout] is not positive
     * @since 0.1
     */
    @JvmSynthetic
    public fun <T> runSync(timeout: Duration, block: suspend () -> T): T {
        require(timeout.isPositive()) { "timeout must be positive, was $timeout" }
        return callBlocking(block, boundedNanos(timeout.inWholeNanoseconds))
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
     * @since 0.1
     */
    @JvmSynthetic
    public fun <T> runAsync(block: suspend () -> T): CompletableFuture<T> = callAsync(block)

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
        return callBlockingOn(runOn, block, nanos)
    }

    /**
     * A snapshot of the loop's state, readable at any time from any thread: tasks queued, calls in flight,
     * background tasks, worker threads (alive, busy, waiting for a slot), the stalls the watchdog saw, and
     * each concurrency limit's occupancy.
     *
     * @since 0.1
     */
    public fun stats(): LoopStats = counters.snapshot(this)

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
     * @since 0.1
     */
    public fun close(grace: java.time.Duration) {
        require(!grace.isNegative) { "grace must not be negative, was $grace" }
        check(!isDefault) {
            "the default loop is shared by the whole process and closed by a JVM shutdown hook; " +
                "use RunSyncLoop.create(name) for a loop whose lifetime you control"
        }
        closing.shutdown(minOf(grace.nanosOr(UNBOUNDED_NANOS), UNBOUNDED_NANOS))
    }

    // ---- Java-shaped forms: the calls above for a SuspendCall (how Java writes a call of a suspend function)
    // and a java.time.Duration. Kotlin code passes suspend lambdas to the forms above instead. ----

    /**
     * [runSync] for a computation in continuation-passing form, as Java code writes it
     * (`c -> service.load(id, c)`). Checked exceptions it throws reach the caller undeclared and unwrapped.
     *
     * @since 0.1
     */
    public fun <T> runSync(call: SuspendCall<T>): T = callBlocking(call, NO_TIMEOUT)

    /**
     * [runSync] with a deadline, for a computation in continuation-passing form. On timeout the call is
     * cancelled and, once it has finished cancelling, [TimeoutException] is thrown.
     *
     * @throws IllegalArgumentException if [timeout] is zero or negative
     * @since 0.1
     */
    @Throws(TimeoutException::class)
    public fun <T> runSync(timeout: java.time.Duration, call: SuspendCall<T>): T =
        callBlocking(call, timeoutNanos(timeout))

    /**
     * [runSync] for a computation in continuation-passing form, with the coroutine run where [runOn] says.
     *
     * @since 0.2
     */
    public fun <T> runSync(runOn: RunOn, call: SuspendCall<T>): T = callBlockingOn(runOn, call, NO_TIMEOUT)

    /**
     * [runSync] with a deadline, for a computation in continuation-passing form, with the coroutine run where
     * [runOn] says. On timeout the call is cancelled and, once it has finished cancelling, [TimeoutException]
     * is thrown.
     *
     * @throws IllegalArgumentException if [timeout] is zero or negative
     * @since 0.2
     */
    @Throws(TimeoutException::class)
    public fun <T> runSync(runOn: RunOn, timeout: java.time.Duration, call: SuspendCall<T>): T =
        callBlockingOn(runOn, call, timeoutNanos(timeout))

    /**
     * [runAsync] for a computation in continuation-passing form, as Java code writes it.
     *
     * @since 0.1
     */
    public fun <T> runAsync(call: SuspendCall<T>): CompletableFuture<T> = callAsync(call)

    override fun toString(): String = "RunSyncLoop(\"$name\", ${closing.stateName})"

    public companion object {
        private val DEFAULT_GRACE: java.time.Duration = java.time.Duration.ofSeconds(5)

        /** What close() gives background tasks unless told otherwise, in nanoseconds. */
        internal val DEFAULT_GRACE_NANOS: Long = DEFAULT_GRACE.toNanos()
        private val DEFAULT_STALL_NANOS = TimeUnit.MILLISECONDS.toNanos(100)

        /** The longest grace close() honours: anything longer is the same as this (about 73 years). */
        private const val UNBOUNDED_NANOS = Long.MAX_VALUE / 4

        /**
         * The process-wide loop, named `default`, created on first use and closed by a JVM shutdown hook.
         * Calling [close] on it throws. Its settings, and its named concurrency limits, can be given from outside
         * the code as system properties `corobridge.<setting>` or environment variables `COROBRIDGE_<SETTING>`,
         * read at first use (docs/settings.md lists them).
         *
         * @throws IllegalStateException if such a setting cannot be used; the message names it and its value
         */
        @JvmStatic
        public val default: RunSyncLoop
            get() = DefaultLoop.get()

        /**
         * Creates a loop of its own, named [name]; the caller closes it. Its thread starts on first use.
         *
         * @throws IllegalArgumentException if [name] is blank
         * @since 0.1
         */
        @JvmStatic
        public fun create(name: String): RunSyncLoop {
            require(name.isNotBlank()) { "name must not be blank, was \"$name\"" }
            return RunSyncLoop(name, isDefault = false)
        }
    }
}
