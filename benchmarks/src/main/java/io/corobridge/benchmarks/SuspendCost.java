package io.corobridge.benchmarks;

import io.corobridge.Bridge;
import io.corobridge.LoopBridge;
import io.corobridge.core.RunSyncLoop;
import io.corobridge.core.SuspendCall;
import java.util.Arrays;
import java.util.Locale;

/**
 * What suspending once adds to a {@code Bridge.sync} call, measured in pairs: one caller thread, one loop, blocks of
 * immediate calls and of calls that suspend once ({@link Baselines#yieldOnce}) taking turns, so the two figures
 * of a round share the JVM, the threads and the processors they happen to run on. JMH measures each in a fork of
 * its own, and where the host places a fork's two threads can change a hand-off's cost several-fold: a ratio of
 * two forks carries that spread, the ratio of a pair does not. Prints one JSON object: the median ratio over the
 * rounds with the smallest and largest, and the median times.
 *
 * <p>Each round also times the suspension alone: one call that runs {@link Baselines#yieldOnceTimes} on the loop,
 * so the loop suspends and resumes a fresh suspend function as many times as a block makes calls, with no call
 * around each ({@code suspensionNanos}, per suspension). That is what kotlinx's own machinery costs the loop thread (a new
 * state machine, its intercepted continuation, a dispatched step), and any design that runs the call on a thread
 * that resumes it pays it; {@code floorRatio} is an immediate call plus that, over an immediate call, per round:
 * the ratio a call that suspends once would have if the call around the suspension cost nothing more.
 *
 * <p>Run: {@code java -cp benchmarks/target/benchmarks.jar io.corobridge.benchmarks.SuspendCost [rounds] [callsPerBlock]}
 */
public final class SuspendCost {
    private SuspendCost() {}

    public static void main(String[] args) {
        int rounds = Args.given(args, 0) ? Args.atLeast(1, args[0], "rounds") : 15;
        int calls = Args.given(args, 1) ? Args.atLeast(1, args[1], "callsPerBlock") : 200_000;
        SuspendCall<Object> immediate = c -> Fixture.ANSWER;
        SuspendCall<Object> suspendOnce = Baselines::yieldOnce;
        double[] immediateNanos = new double[rounds];
        double[] suspendNanos = new double[rounds];
        double[] ratios = new double[rounds];
        double[] suspensionNanos = new double[rounds];
        double[] floors = new double[rounds];
        try (RunSyncLoop loop = RunSyncLoop.create("suspend-cost")) {
            LoopBridge bridge = Bridge.on(loop);
            for (int i = 0; i < 3; i++) {
                block(bridge, immediate, calls);
                block(bridge, suspendOnce, calls);
                suspensionsOnLoop(bridge, calls);
            }
            for (int round = 0; round < rounds; round++) {
                // Alternate which goes first, so a drift within a round favours neither.
                if (round % 2 == 0) {
                    immediateNanos[round] = block(bridge, immediate, calls);
                    suspendNanos[round] = block(bridge, suspendOnce, calls);
                } else {
                    suspendNanos[round] = block(bridge, suspendOnce, calls);
                    immediateNanos[round] = block(bridge, immediate, calls);
                }
                ratios[round] = suspendNanos[round] / immediateNanos[round];
                suspensionNanos[round] = suspensionsOnLoop(bridge, calls);
                floors[round] = (immediateNanos[round] + suspensionNanos[round]) / immediateNanos[round];
            }
        }
        System.out.println(String.format(Locale.ROOT,
                "{\"rounds\": %d, \"callsPerBlock\": %d, \"immediateNanos\": %.1f, \"suspendOnceNanos\": %.1f,"
                        + " \"ratio\": %.3f, \"ratioMin\": %.3f, \"ratioMax\": %.3f, \"suspensionNanos\": %.1f,"
                        + " \"floorRatio\": %.3f, \"floorRatioMin\": %.3f, \"floorRatioMax\": %.3f}",
                rounds, calls, median(immediateNanos), median(suspendNanos), median(ratios), min(ratios), max(ratios),
                median(suspensionNanos), median(floors), min(floors), max(floors)));
    }

    /** Nanoseconds per call over [calls] calls of [call]. */
    private static double block(LoopBridge bridge, SuspendCall<Object> call, int calls) {
        long start = System.nanoTime();
        for (int i = 0; i < calls; i++) {
            Object answer = bridge.sync(call);
            if (!Fixture.ANSWER.equals(answer)) throw new AssertionError("the call answered " + answer);
        }
        return (System.nanoTime() - start) / (double) calls;
    }

    /** Nanoseconds per suspension over one call that suspends [calls] times on the loop, each a fresh function. */
    private static double suspensionsOnLoop(LoopBridge bridge, int calls) {
        long start = System.nanoTime();
        Object answer = bridge.sync(c -> Baselines.yieldOnceTimes(calls, c));
        if (!Fixture.ANSWER.equals(answer)) throw new AssertionError("the call answered " + answer);
        return (System.nanoTime() - start) / (double) calls;
    }

    private static double median(double[] values) {
        double[] sorted = values.clone();
        Arrays.sort(sorted);
        return sorted[sorted.length / 2];
    }

    private static double min(double[] values) {
        return Arrays.stream(values).min().orElse(Double.NaN);
    }

    private static double max(double[] values) {
        return Arrays.stream(values).max().orElse(Double.NaN);
    }
}
