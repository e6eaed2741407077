package io.corobridge;

import io.corobridge.core.LoopTask;
import java.util.concurrent.CompletableFuture;

/** {@link BackgroundTask} over the core's {@link LoopTask}. */
final class LoopBackgroundTask implements BackgroundTask {
    private final LoopTask task;

    LoopBackgroundTask(LoopTask task) {
        this.task = task;
    }

    @Override
    public boolean isDone() {
        return task.isDone();
    }

    @Override
    public void cancel() {
        task.cancel();
    }

    @Override
    public CompletableFuture<?> completion() {
        return task.getCompletion();
    }
}
