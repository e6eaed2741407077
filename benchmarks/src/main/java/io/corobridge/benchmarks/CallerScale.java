package io.corobridge.benchmarks;

import io.corobridge.core.RunOn;
import java.lang.reflect.Method;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicIntegerFieldUpdater;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.atomic.LongAdder;
import java.util.concurrent.locks.LockSupport;

/**
 * Many callers on one loop: 1, 8 and 64 platform threads, and 1,000 and 10,000 virtual threads where the JDK has
 * them (21 and later), each making trivial blocking calls one after another, for {@code Bridge.sync}, for
 * {@code Bridge.sync(RunOn.CALLER_THREAD, ..)}, for the two hand-written ways of waiting for one thread's work,
 * {@code CompletableFuture.supplyAsync(.., executor).join()} and {@code runBlocking(executorDispatcher)}, and for
 * {@link ParkHandOff}, the least a hand-off to one thread can cost when its caller parks. JMH runs a fixed number of platform threads only, so this plain
 * harness measures every count the same way: calls completed in a window after a warm-up, the ways in a rotating
 * order, the median over the rounds. It also counts the JFR events that report a virtual thread pinning its
 * carrier while it waits ({@code jdk.VirtualThreadPinned}) during the virtual-thread runs of {@code Bridge.sync}.
 * Prints one JSON object.
 *
 * <p>Run: {@code java -cp benchmarks/target/benchmarks.jar io.corobridge.benchmarks.CallerScale [rounds] [windowMillis]
 * [out.json] [ways]}, ways a comma-separated subset of {@code bridgeSync,bridgeSyncCallerThread,supplyAsyncJoin,
 * runBlockingOnLoop,parkHandOff} (all by default); {@code -} keeps any argument's default (no file: standard output).
 */
public final class CallerScale {
    private static final String[] ALL_WAYS = {
        "bridgeSync", "bridgeSyncCallerThread", "supplyAsyncJoin", "runBlockingOnLoop", "parkHandOff"};

    private CallerScale() {}

    interface Call {
        Object run() throws Exception;
    }

    public static void main(String[] args) throws Exception {
        int rounds = Args.given(args, 0) ? Args.atLeast(1, args[0], "rounds") : 3;
        String[] ways = Args.given(args, 3) ? args[3].split(",") : ALL_WAYS;
        for (String way : ways) {
            if (!List.of(ALL_WAYS).contains(way)) {
                throw new IllegalArgumentException("ways must be among " + String.join(",", ALL_WAYS) + ", was \"" + way + "\"");
            }
        }
        long windowNanos = TimeUnit.MILLISECONDS.toNanos(Args.given(args, 1) ? Args.atLeast(1, args[1], "windowMillis") : 1000);
        Method ofVirtual = virtualBuilder();
        List<Object[]> counts = new ArrayList<>(List.of(new Object[] {"platform", 1}, new Object[] {"platform", 8},
                new Object[] {"platform", 64}));
        if (ofVirtual != null) {
            counts.add(new Object[] {"virtual", 1000});
            counts.add(new Object[] {"virtual", 10000});
        }
        Fixture f = new Fixture();
        f.call = "immediate";
        f.setUp();
        ParkHandOff parkHandOff = new ParkHandOff();
        AtomicLong pinned = new AtomicLong();
        Object pinWatch = ofVirtual == null ? null : PinWatch.start(pinned);
        StringBuilder json = new StringBuilder("{\"rounds\": " + rounds + ", \"windowMillis\": "
                + TimeUnit.NANOSECONDS.toMillis(windowNanos) + ", \"results\": [");
        try {
            boolean first = true;
            for (Object[] count : counts) {
                boolean virtual = count[0].equals("virtual");
                int callers = (Integer) count[1];
                double[][] samples = new double[ways.length][rounds];
                double[][] switches = new double[ways.length][rounds];
                for (int w = 0; w < ways.length; w++) measure(call(f, parkHandOff, ways[w]), callers, virtual, ofVirtual, windowNanos / 4);
                for (int round = 0; round < rounds; round++) {
                    for (int i = 0; i < ways.length; i++) {
                        int w = (i + round) % ways.length;
                        long pinnedBefore = pinned.get();
                        double[] got = measure(call(f, parkHandOff, ways[w]), callers, virtual, ofVirtual, windowNanos);
                        samples[w][round] = got[0];
                        switches[w][round] = got[1];
                        if (virtual && ways[w].equals("bridgeSync") && pinned.get() != pinnedBefore) {
                            System.err.println("pinned carrier events during Bridge.sync: " + (pinned.get() - pinnedBefore));
                        }
                    }
                }
                for (int w = 0; w < ways.length; w++) {
                    double[] sorted = samples[w].clone();
                    Arrays.sort(sorted);
                    double median = sorted[sorted.length / 2];
                    double[] sortedSwitches = switches[w].clone();
                    Arrays.sort(sortedSwitches);
                    double switchesPerCall = sortedSwitches[sortedSwitches.length / 2];
                    json.append(first ? "\n  " : ",\n  ");
                    first = false;
                    json.append(String.format(Locale.ROOT,
                            "{\"threads\": \"%s\", \"callers\": %d, \"way\": \"%s\", \"callsPerMicro\": %.4f, "
                                    + "\"min\": %.4f, \"max\": %.4f, \"switchesPerCall\": %.3f}",
                            count[0], callers, ways[w], median, sorted[0], sorted[sorted.length - 1], switchesPerCall));
                    System.err.printf(Locale.ROOT, "%-8s %6d callers %-18s %8.4f calls/us  %.3f switches/call%n",
                            count[0], callers, ways[w], median, switchesPerCall);
                }
            }
        } finally {
            if (pinWatch != null) PinWatch.stop(pinWatch);
            parkHandOff.close();
            f.tearDown();
        }
        json.append(String.format(Locale.ROOT, "\n], \"virtualThreads\": %s, \"pinnedEvents\": %d}",
                ofVirtual != null, pinned.get()));
        String out = json.toString();
        if (Args.given(args, 2)) Files.writeString(Path.of(args[2]), out + "\n", StandardCharsets.UTF_8);
        else System.out.println(out);
    }

    private static Call call(Fixture f, ParkHandOff parkHandOff, String way) {
        return switch (way) {
            case "bridgeSync" -> () -> f.bridge.sync(f.suspendCall);
            case "bridgeSyncCallerThread" -> () -> f.bridge.sync(RunOn.CALLER_THREAD, f.suspendCall);
            case "parkHandOff" -> parkHandOff::call;
            case "supplyAsyncJoin" -> f::supplyAsyncJoin;
            case "runBlockingOnLoop" -> () -> f.runBlockingOn(f.executorDispatcher);
            default -> throw new IllegalArgumentException("way " + way);
        };
    }

    /**
     * Calls per microsecond over the window, all callers together, and the process's context switches per
     * call over the same time (counted from the barrier, warm-up included; NaN without /proc).
     */
    private static double[] measure(Call call, int callers, boolean virtual, Method ofVirtual, long windowNanos)
            throws Exception {
        CyclicBarrier start = new CyclicBarrier(callers + 1);
        LongAdder done = new LongAdder();
        LongAdder totalCalls = new LongAdder();
        long[] window = new long[2];
        Throwable[] failure = new Throwable[1];
        // Callers that are done wait until the switches are read: /proc counts only live threads, so a caller
        // that ended first would take its switches out of the sum instead of adding them.
        CountDownLatch finished = new CountDownLatch(callers);
        CountDownLatch counted = new CountDownLatch(1);
        Runnable body = () -> {
            try {
                start.await();
                long from = window[0];
                long end = window[1];
                long mine = 0;
                long every = 0;
                while (true) {
                    long now = System.nanoTime();
                    if (now - end >= 0) break;
                    call.run();
                    every++;
                    if (now - from >= 0) mine++;
                }
                done.add(mine);
                totalCalls.add(every);
            } catch (Throwable e) {
                synchronized (failure) {
                    failure[0] = e;
                }
            }
            finished.countDown();
            try {
                counted.await();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        };
        Thread[] threads = new Thread[callers];
        for (int i = 0; i < callers; i++) {
            threads[i] = virtual ? startVirtual(ofVirtual, body) : new Thread(body, "scale-caller-" + i);
            if (!virtual) {
                threads[i].setDaemon(true); // should the main thread fail before counting down, callers must not hold the JVM
                threads[i].start();
            }
        }
        window[0] = System.nanoTime() + Math.max(windowNanos / 4, TimeUnit.MILLISECONDS.toNanos(200));
        window[1] = window[0] + windowNanos;
        start.await();
        long switches0 = ProcStats.contextSwitches();
        finished.await();
        long switches1 = ProcStats.contextSwitches();
        counted.countDown();
        for (Thread t : threads) t.join();
        if (failure[0] != null) throw new IllegalStateException("a caller failed", failure[0]);
        // Calls that started before the end and finished after it are counted: a small bias, the same for all ways.
        return new double[] {done.sum() / (windowNanos / 1e3),
            switches0 < 0 ? Double.NaN : (switches1 - switches0) / (double) Math.max(1, totalCalls.sum())};
    }

    private static Method virtualBuilder() {
        try {
            return Thread.class.getMethod("startVirtualThread", Runnable.class);
        } catch (NoSuchMethodException e) {
            return null;
        }
    }

    private static Thread startVirtual(Method startVirtualThread, Runnable body) throws Exception {
        return (Thread) startVirtualThread.invoke(null, body);
    }

    /** Counts jdk.VirtualThreadPinned events (JDK 21+) through a JFR recording stream. */
    private static final class PinWatch {
        static Object start(AtomicLong pinned) {
            jdk.jfr.consumer.RecordingStream stream = new jdk.jfr.consumer.RecordingStream();
            stream.enable("jdk.VirtualThreadPinned").withThreshold(java.time.Duration.ZERO);
            stream.onEvent("jdk.VirtualThreadPinned", e -> pinned.incrementAndGet());
            stream.startAsync();
            return stream;
        }

        static void stop(Object stream) {
            ((jdk.jfr.consumer.RecordingStream) stream).close();
        }
    }

    /**
     * The bare minimum of handing a call to one server thread when the caller parks at once: a request of 24
     * bytes pushed on a lock-free stack, the server's wake-up if it sleeps, one park and one unpark. The server
     * does nothing but answer (no coroutine, no statistics, no closing protocol) and spins 50 µs before it
     * sleeps. With many more callers than processors a caller cannot spin (the thread that would answer it needs
     * the processor), so every design that runs the call on one thread pays at least this: it is the floor for
     * the 64-caller figures. With one caller it is slow, because a caller that spins never parks.
     */
    static final class ParkHandOff implements AutoCloseable {
        private static final int WAITING = 0;
        private static final int PARKED = 1;
        private static final int ANSWERED = 2;
        private static final AtomicIntegerFieldUpdater<Request> STATE =
                AtomicIntegerFieldUpdater.newUpdater(Request.class, "state");

        static final class Request {
            final Thread caller = Thread.currentThread();
            volatile int state;
            Request next;
        }

        private final AtomicReference<Request> pushed =
                new AtomicReference<>();
        private final AtomicBoolean sleeping = new AtomicBoolean();
        private volatile boolean closed;
        private final Thread server = new Thread(this::serve, "park-hand-off");

        ParkHandOff() {
            server.setDaemon(true);
            server.start();
        }

        Object call() {
            Request r = new Request();
            while (true) {
                Request head = pushed.get();
                r.next = head;
                if (pushed.compareAndSet(head, r)) break;
            }
            if (sleeping.get() && sleeping.compareAndSet(true, false)) LockSupport.unpark(server);
            if (STATE.compareAndSet(r, WAITING, PARKED)) {
                while (r.state != ANSWERED) LockSupport.park(this);
            }
            return Fixture.ANSWER;
        }

        private void serve() {
            while (!closed) {
                Request newestFirst = pushed.getAndSet(null);
                if (newestFirst == null) {
                    long deadline = System.nanoTime() + 50_000;
                    while (pushed.get() == null && System.nanoTime() - deadline < 0) Thread.onSpinWait();
                    if (pushed.get() != null) continue;
                    sleeping.set(true);
                    if (pushed.get() == null && !closed) LockSupport.park(this);
                    sleeping.set(false);
                    continue;
                }
                Request oldestFirst = null;
                while (newestFirst != null) {
                    Request next = newestFirst.next;
                    newestFirst.next = oldestFirst;
                    oldestFirst = newestFirst;
                    newestFirst = next;
                }
                for (Request r = oldestFirst; r != null; r = r.next) {
                    if (STATE.getAndSet(r, ANSWERED) == PARKED) LockSupport.unpark(r.caller);
                }
            }
        }

        @Override
        public void close() throws InterruptedException {
            closed = true;
            LockSupport.unpark(server);
            server.join();
        }
    }
}
