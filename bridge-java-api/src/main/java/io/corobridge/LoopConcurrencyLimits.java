package io.corobridge;

import io.corobridge.core.SuspendCall;
import io.corobridge.core.LimitSlots;
import io.corobridge.core.LimitStats;
import java.time.Duration;
import java.util.List;
import java.util.Objects;
import org.jspecify.annotations.Nullable;

/** {@link ConcurrencyLimits} over a loop's {@link io.corobridge.core.ConcurrencyLimits}. */
final class LoopConcurrencyLimits implements ConcurrencyLimits {
    private final io.corobridge.core.ConcurrencyLimits limits;

    LoopConcurrencyLimits(io.corobridge.core.ConcurrencyLimits limits) {
        this.limits = limits;
    }

    @Override
    public void create(String tag, int slots) {
        Objects.requireNonNull(tag, "tag must not be null");
        limits.create(tag, slots);
    }

    @Override
    public Slots acquire(Duration timeout, String... tags) {
        Objects.requireNonNull(timeout, "timeout must not be null");
        LimitSlots slots = limits.acquire(timeout, checked(tags));
        return slots::close;
    }

    @Override
    public <T extends @Nullable Object> SuspendCall<T> limited(SuspendCall<T> call, String... tags) {
        Objects.requireNonNull(call, "call must not be null");
        return limits.limited(call, checked(tags));
    }

    @Override
    public int occupied(String tag) {
        return limits.occupied(Objects.requireNonNull(tag, "tag must not be null"));
    }

    @Override
    public int waiting(String tag) {
        return limits.waiting(Objects.requireNonNull(tag, "tag must not be null"));
    }

    @Override
    public Duration totalWaitTime(String tag) {
        return limits.totalWaitTime(Objects.requireNonNull(tag, "tag must not be null"));
    }

    @Override
    public List<LimitStats> stats() {
        return limits.stats();
    }

    @Override
    public String toString() {
        return "ConcurrencyLimits" + limits.getTags();
    }

    private static String[] checked(String[] tags) {
        Objects.requireNonNull(tags, "tags must not be null");
        for (int i = 0; i < tags.length; i++) {
            if (tags[i] == null) {
                throw new NullPointerException("tags[" + i + "] must not be null");
            }
        }
        return tags.clone();
    }
}
