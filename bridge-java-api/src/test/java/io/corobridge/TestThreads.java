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
     * Waits until {@code thread} is parked inside a corobridge blocking call or stream read (its stack shows the wait),
     * with a 10 s deadline. No latch can say "the thread has entered the wait", so this watches the thread;
     * its state alone is not enough, as a thread may park briefly elsewhere first (class loading, say).
     */
    static void awaitParked(Thread thread) {
        long deadline = System.nanoTime() + java.util.concurrent.TimeUnit.SECONDS.toNanos(10);
        while (!parkedInBlockingCall(thread)) {
            if (System.nanoTime() > deadline) {
                fail(thread.getName() + " never parked in a blocking call: " + thread.getState());
            }
            Thread.onSpinWait();
        }
    }

    private static boolean parkedInBlockingCall(Thread thread) {
        Thread.State state = thread.getState();
        if (state != Thread.State.WAITING && state != Thread.State.TIMED_WAITING) {
            return false;
        }
        for (StackTraceElement frame : thread.getStackTrace()) {
            if (frame.getClassName().equals("io.corobridge.core.internal.BlockingCall")
                    && frame.getMethodName().equals("await")) {
                return true;
            }
            if (frame.getClassName().equals("io.corobridge.core.internal.FlowSource")
                    && frame.getMethodName().equals("awaitReadable")) {
                return true; // a read of Bridge.stream, waiting for the flow's next element
            }
        }
        return false;
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

    /** Waits, with a 10 s deadline, for a state no latch can announce; fails naming {@code what}. */
    static void awaitCondition(String what, java.util.function.BooleanSupplier condition) {
        long deadline = System.nanoTime() + java.util.concurrent.TimeUnit.SECONDS.toNanos(10);
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() - deadline > 0) {
                fail("never happened: " + what);
            }
            Thread.yield();
        }
    }

    @FunctionalInterface
    interface ThrowingRunnable {
        void run() throws Exception;
    }
}
