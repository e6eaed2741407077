package io.corobridge;

import static org.junit.jupiter.api.Assertions.fail;

import java.util.List;
import java.util.stream.Collectors;

/** Helpers for checking which threads are alive. */
final class TestThreads {
    private TestThreads() {}

    static List<String> alive(String prefix) {
        return Thread.getAllStackTraces().keySet().stream()
                .filter(t -> t.isAlive() && t.getName().startsWith(prefix))
                .map(Thread::getName)
                .collect(Collectors.toList());
    }

    static void assertNone(String prefix) {
        List<String> left = alive(prefix);
        if (!left.isEmpty()) {
            fail("threads still running: " + left);
        }
    }

    /** Starts a thread running {@code body}, recording what it throws into {@code thrown}. */
    static Thread start(String name, ThrowingRunnable body, java.util.concurrent.atomic.AtomicReference<Throwable> thrown) {
        Thread thread = new Thread(() -> {
            try {
                body.run();
            } catch (Throwable t) {
                thrown.set(t);
            }
        }, name);
        thread.start();
        return thread;
    }

    /**
     * Waits until {@code thread} is parked (a blocking call it made is waiting), with a 10 s deadline. No
     * latch can say "the thread has entered the wait", so this watches its state.
     */
    static void awaitParked(Thread thread) {
        long deadline = System.nanoTime() + java.util.concurrent.TimeUnit.SECONDS.toNanos(10);
        while (thread.getState() != Thread.State.WAITING && thread.getState() != Thread.State.TIMED_WAITING) {
            if (System.nanoTime() > deadline) {
                fail(thread.getName() + " never parked: " + thread.getState());
            }
            Thread.onSpinWait();
        }
    }

    /** Waits for the latch where a checked InterruptedException cannot be thrown (inside a lambda). */
    static void await(java.util.concurrent.CountDownLatch latch) {
        try {
            latch.await();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new AssertionError("interrupted while waiting", e);
        }
    }

    @FunctionalInterface
    interface ThrowingRunnable {
        void run() throws Exception;
    }
}
