package io.corobridge.internal;

import io.corobridge.GatherScope;
import io.corobridge.SuspendCall;
import io.corobridge.core.GatherGroup;
import io.corobridge.core.GatherHandle;
import io.corobridge.core.RunSyncLoop;
import java.util.Objects;
import kotlin.Unit;
import org.jspecify.annotations.Nullable;

/** {@link GatherScope} over the core's {@link GatherGroup}: blocking join and close run its suspend ones. */
public final class LoopGatherScope<T extends @Nullable Object> implements GatherScope<T> {
    private final RunSyncLoop loop;
    private final GatherGroup<T> group;

    public LoopGatherScope(RunSyncLoop loop) {
        this.loop = loop;
        this.group = loop.openGather();
    }

    @Override
    public Handle<T> fork(SuspendCall<? extends T> call) {
        Objects.requireNonNull(call, "call must not be null");
        GatherHandle<T> handle = group.fork(call);
        return handle::get;
    }

    @Override
    public void join() {
        SuspendCall<Unit> join = group::join;
        loop.runSync(join);
    }

    @Override
    public void close() {
        SuspendCall<Unit> close = group::close;
        loop.runSync(close);
    }
}
