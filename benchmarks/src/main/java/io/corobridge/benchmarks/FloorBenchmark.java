package io.corobridge.benchmarks;

import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;

/**
 * The raw floors of a cross-thread round trip, measured in the same run as everything else: the caller
 * hands a number to an echo thread and waits for it to come back, either parking (park/unpark on both
 * sides) or spinning on both sides. Nothing that crosses threads twice can beat the spin floor.
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
public class FloorBenchmark {
    /** An echo thread and the two slots it and the caller exchange through. */
    @State(Scope.Benchmark)
    public static class Echo {
        volatile long request;
        volatile long response;
        volatile boolean running;
        volatile Thread caller;
        Thread echo;
        boolean park;
        long sequence;

        void start(boolean parking, String name) {
            park = parking;
            running = true;
            echo = new Thread(this::serve, name);
            echo.setDaemon(true);
            echo.start();
        }

        private void serve() {
            long seen = 0;
            while (running) {
                long r = request;
                if (r == seen) {
                    if (park) {
                        LockSupport.park(this);
                    } else {
                        Thread.onSpinWait();
                    }
                    continue;
                }
                seen = r;
                response = r;
                if (park) {
                    LockSupport.unpark(caller);
                }
            }
        }

        long roundTrip() {
            long n = ++sequence;
            if (caller == null) {
                caller = Thread.currentThread();
            }
            request = n;
            if (park) {
                LockSupport.unpark(echo);
                while (response != n) {
                    LockSupport.park(this);
                }
            } else {
                while (response != n) {
                    Thread.onSpinWait();
                }
            }
            return n;
        }

        void stop() throws InterruptedException {
            running = false;
            LockSupport.unpark(echo);
            echo.join();
        }
    }

    /** Parks on both sides. */
    @State(Scope.Benchmark)
    public static class ParkEcho extends Echo {
        @Setup(Level.Trial)
        public void setUp() {
            start(true, "floor-park-echo");
        }

        @TearDown(Level.Trial)
        public void tearDown() throws InterruptedException {
            stop();
        }
    }

    /** Spins on both sides. */
    @State(Scope.Benchmark)
    public static class SpinEcho extends Echo {
        @Setup(Level.Trial)
        public void setUp() {
            start(false, "floor-spin-echo");
        }

        @TearDown(Level.Trial)
        public void tearDown() throws InterruptedException {
            stop();
        }
    }

    @Benchmark
    public long parkPingPong(ParkEcho echo) {
        return echo.roundTrip();
    }

    @Benchmark
    public long spinPingPong(SpinEcho echo) {
        return echo.roundTrip();
    }
}
