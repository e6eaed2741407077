package io.corobridge;

import io.corobridge.core.SuspendCall;
import io.corobridge.core.ConcurrencyLimitTimeoutException;
import io.corobridge.core.LimitStats;
import java.time.Duration;
import java.util.List;
import org.jspecify.annotations.Nullable;

/**
 * A loop's named concurrency limits: "at most 10 running with tag {@code db}", set once and obeyed everywhere,
 * from calls on the loop (which wait without blocking it) and from plain Java threads (which block). The
 * counterpart of Prefect's {@code prefect concurrency-limit} and {@code concurrency()}.
 *
 * <pre>{@code
 * ConcurrencyLimits limits = Bridge.limits();
 * limits.create("db", 10);
 * try (ConcurrencyLimits.Slots slots = limits.acquire(Duration.ofSeconds(5), "db")) {
 *     jdbc.update(sql);                                   // at most 10 threads here at once
 * }
 * User user = Bridge.sync(limits.limited(c -> users.load(42, c), "db"));
 * }</pre>
 *
 * <p>Several tags are taken all-or-nothing in one global order (sorted by name), so callers asking for
 * {a, b} and {b, a} never deadlock; waiting is first come, first served per tag; slots are released on every
 * path (normal end, exception, cancellation, interrupt, timeout) and never twice. Asking for no tags runs
 * unlimited and touches nothing. Safe to use from any thread.
 *
 * @since 0.1
 */
public interface ConcurrencyLimits {
    /**
     * Defines {@code tag} with {@code slots} slots; 0 switches it off (asking for it then fails at once).
     * Defining it again with the same size changes nothing; with another size only while none of its slots is
     * held.
     *
     * @throws IllegalArgumentException if {@code tag} is blank or {@code slots} negative
     * @throws IllegalStateException if the tag has another size and some of its slots are held
     */
    void create(String tag, int slots);

    /**
     * Takes one slot of each tag for the calling thread, blocking it until all are free; close the result
     * (try-with-resources) to give them back.
     *
     * @throws ConcurrencyLimitTimeoutException if not all were free within {@code timeout}; the message names
     *     the tag and its occupancy (held / slots / waiting), and no slot is then held
     * @throws java.util.concurrent.CancellationException if the thread is interrupted while waiting (no slot is
     *     then held; the interrupt flag is set again)
     * @throws IllegalArgumentException if a tag is unknown (the message lists the known tags) or the timeout is
     *     not positive
     * @throws IllegalStateException if a tag has 0 slots (at once), or if called on a loop thread, where waiting
     *     would stall the loop: use {@link #limited} there
     */
    Slots acquire(Duration timeout, String... tags);

    /**
     * Wraps {@code call} so that wherever it runs ({@code Bridge.sync}, {@code async}, {@code gather},
     * {@code launch}) it first waits, without blocking the loop, for a slot of each tag, and gives them back
     * when it ends, however it ends.
     *
     * @throws IllegalArgumentException if a tag is unknown (checked now)
     */
    <T extends @Nullable Object> SuspendCall<T> limited(SuspendCall<T> call, String... tags);

    /** Returns the slots of {@code tag} held now. @throws IllegalArgumentException if the tag is unknown */
    int occupied(String tag);

    /** Returns the callers waiting for {@code tag} now. @throws IllegalArgumentException if the tag is unknown */
    int waiting(String tag);

    /**
     * Returns the time callers have spent waiting for {@code tag}, summed, since it was defined.
     *
     * @throws IllegalArgumentException if the tag is unknown
     */
    Duration totalWaitTime(String tag);

    /** Returns a snapshot of every limit, sorted by tag. */
    List<LimitStats> stats();

    /** Slots taken by {@link #acquire}; closing gives them back, once. May be closed from any thread. */
    interface Slots extends AutoCloseable {
        /** Gives the slots back; closing again does nothing. */
        @Override
        void close();
    }
}
