package io.corobridge;

import io.corobridge.core.GatherGroup;
import io.corobridge.core.GatherHandle;
import io.corobridge.core.RunSyncLoop;
import io.corobridge.core.SuspendCall;
import java.util.Objects;
import java.util.concurrent.CancellationException;
import kotlin.Unit;
import org.jspecify.annotations.Nullable;

/** {@link GatherScope} over the core's {@link GatherGroup}: blocking join and close run its suspend ones. */
final class LoopGatherScope<T extends @Nullable Object> implements GatherScope<T> {
    private final RunSyncLoop loop;
    private final GatherGroup<T> group;

    LoopGatherScope(RunSyncLoop loop) {
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
        runCancellingOnInterrupt(join);
    }

    @Override
    public void close() {
        SuspendCall<Unit> close = group::close;
        runCancellingOnInterrupt(close);
    }

    /**
     * Runs the group's join or close on the loop. If that call is cancelled (the caller was interrupted) it
     * may not even have started, and then it cancelled nothing: cancel every call here and wait, without
     * being interruptible, until they have ended, so the promise "an interrupted join cancels every call"
     * holds either way.
     */
    private void runCancellingOnInterrupt(SuspendCall<Unit> call) {
        try {
            loop.runSync(call);
        } catch (CancellationException e) {
            group.cancel().join();
            throw e;
        }
    }
}
