package io.corobridge.core

import java.time.Duration

/**
 * How the two sides of a hand-off wait: a caller blocked in [RunSyncLoop.runSync] for its result, and the
 * loop thread for its next task.
 *
 * Parking a thread and waking it again costs an operating-system call on each side, several microseconds
 * on a quiet machine and tens when it is busy, which is far more than the call itself usually costs. A
 * thread that spins briefly first (busy-waits with [Thread.onSpinWait]) sees the answer without that cost
 * when it comes quickly, and parks only when it does not. [ADAPTIVE] does that on both sides and is the
 * default; [PARK] never spins, for deployments where a busy-waiting thread is not acceptable.
 *
 * Spinning is bounded and never makes an idle loop use CPU: the loop parks once [loopSpin] has passed with
 * no work. Callers on virtual threads never spin (parking is cheap for them), and at most one fewer
 * caller than there are processors spins at a time, so spinners never crowd out the loop thread itself.
 * Callers also stop spinning while it does not pay: after 8 spins in a row that ended without an answer
 * they park at once, except one wait in 16 (at random), and the first spin that gets its answer resumes it.
 * The loop does the same with its idle spin: after 8 that found no work it parks at once, except every 16th
 * idle turn, and the first spin that meets a task resumes it. Where the JVM counts one processor, callers
 * do not spin, but the loop does: a CPU quota of one on a host of many cores counts one processor while the
 * callers run beside the loop, and a loop that parked at once would make every call wait for two wake-ups.
 *
 * Immutable; safe to share.
 *
 * @since 0.1
 */
public class WaitStrategy private constructor(
    /** How long a caller spins for its result before it parks. */
    public val callerSpin: Duration,
    /** How long the loop thread spins for new work, once its queue is empty, before it parks. */
    public val loopSpin: Duration,
) {
    internal val callerSpinNanos: Long = callerSpin.toNanos()
    internal val loopSpinNanos: Long = loopSpin.toNanos()

    override fun toString(): String = "WaitStrategy(callerSpin=$callerSpin, loopSpin=$loopSpin)"

    public companion object {
        /** Never spin: both sides park at once. */
        @JvmField
        public val PARK: WaitStrategy = WaitStrategy(Duration.ZERO, Duration.ZERO)

        /** The default: callers spin up to 20 µs, the idle loop up to 50 µs, then they park. */
        @JvmField
        public val ADAPTIVE: WaitStrategy = WaitStrategy(Duration.ofNanos(20_000), Duration.ofNanos(50_000))

        /**
         * Spin up to [callerSpin] on the caller's side and [loopSpin] on the loop's side before parking.
         * Zero means "park at once"; at most one second each.
         *
         * @throws IllegalArgumentException if either is negative or longer than one second
         * @since 0.1
         */
        @JvmStatic
        public fun adaptive(callerSpin: Duration, loopSpin: Duration): WaitStrategy {
            require(!callerSpin.isNegative && callerSpin <= MAX_SPIN) {
                "callerSpin must be between zero and $MAX_SPIN, was $callerSpin"
            }
            require(!loopSpin.isNegative && loopSpin <= MAX_SPIN) {
                "loopSpin must be between zero and $MAX_SPIN, was $loopSpin"
            }
            return WaitStrategy(callerSpin, loopSpin)
        }

        private val MAX_SPIN: Duration = Duration.ofSeconds(1)
    }
}
