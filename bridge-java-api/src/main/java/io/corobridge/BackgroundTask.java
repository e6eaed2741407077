package io.corobridge;

import java.util.concurrent.CompletableFuture;

/**
 * A fire-and-forget call started with {@link Bridge#launch}: it runs on the loop, nobody waits for it, and it
 * is never lost. The loop holds it strongly until it ends, even if you drop this handle, and reports its
 * failure to the loop's failure handler (by default logged with its stack trace) instead of swallowing it.
 *
 * <p>Safe to use from any thread. When the loop closes, background tasks get a grace period to finish
 * before they are cancelled (see {@link io.corobridge.core.RunSyncLoop#close(java.time.Duration)}).
 *
 * @since 0.1
 */
public interface BackgroundTask {
    /** Returns true once the task has ended: finished, failed or cancelled. Never blocks. */
    boolean isDone();

    /**
     * Cancels the task, whether queued or running, and returns at once. A cancellation is not reported as a
     * failure. Cancelling an ended task does nothing.
     */
    void cancel();

    /**
     * Returns a future of the task's end, completed on the thread that ends it (normally the loop thread):
     * with its result, or exceptionally with its failure or its cancellation. Cancelling this future does not
     * cancel the task; call {@link #cancel()}.
     */
    CompletableFuture<?> completion();
}
