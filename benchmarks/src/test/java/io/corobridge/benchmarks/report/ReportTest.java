package io.corobridge.benchmarks.report;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The report turns JMH JSON into ratios within one JDK's run and judges each target by them. */
class ReportTest {
    @TempDir
    Path dir;

    @Test
    void computesRatiosAndJudgesTargetsFromOneRun() throws Exception {
        Path jdk = Files.createDirectories(dir.resolve("results/jdk17"));
        Files.writeString(jdk.resolve("single.json"), "["
                + entry("SingleCallerBenchmark.bridgeSync", "avgt", 1, "immediate", 0.5, 72)
                + "," + entry("SingleCallerBenchmark.runBlockingOnLoop", "avgt", 1, "immediate", 10.0, 300)
                + "," + entry("SingleCallerBenchmark.bridgeAsyncJoin", "avgt", 1, "immediate", 6.0, 150)
                + "," + entry("SingleCallerBenchmark.futureOnLoopJoin", "avgt", 1, "immediate", 10.0, 800)
                + "]");
        Files.writeString(jdk.resolve("floor.json"), "["
                + entry("FloorBenchmark.spinPingPong", "avgt", 1, null, 0.1, 0)
                        .replace("\"scoreUnit\"", "\"rawData\": [[0.3, 0.29, 0.31], [0.07, 0.08, 0.07, 0.06]], \"scoreUnit\"")
                + "]");
        Files.writeString(jdk.resolve("multi-t4.json"), "["
                + entry("MultiCallerBenchmark.bridgeSync", "thrpt", 4, "immediate", 0.3, 72)
                + "," + entry("MultiCallerBenchmark.supplyAsyncJoin", "thrpt", 4, "immediate", 0.15, 200) + "]");
        Files.writeString(jdk.resolve("idle.json"), "{\"windowMillis\": 1000, \"adaptiveCpuMillis\": 0.0, \"parkCpuMillis\": 0.0}");
        Files.writeString(jdk.resolve("callbytes.json"), "{\"calls\": 1000000, \"callerMedianBytes\": 64,"
                + " \"callerMaxBytes\": 96, \"shareAtMost64\": 0.999700, \"callerBytesPerCall\": 64.010,"
                + " \"loopBytesPerCall\": 0.002}");
        Path md = dir.resolve("benchmarks.md");
        Path png = dir.resolve("benchmarks.png");

        Report.main(new String[] {dir.resolve("results").toString(), "quick", md.toString(), png.toString()});

        String page = Files.readString(md, StandardCharsets.UTF_8);
        assertTrue(page.contains("| `Bridge.sync` ≤ 0.25 × `runBlocking(loop)` | 0.0500 × | met |"), page);
        assertTrue(page.contains("| `Bridge.sync` ≤ 2 × the spin ping-pong floor | 5.00 × | **missed** |"), page);
        assertTrue(page.contains("| `Bridge.sync` allocates ≤ 64 B per call, counted per call on its two threads"
                + " (`CallBytes`) | 64 B in 99.970 % of calls, at most 96 B; mean 64.010 B on the caller, 0.002 B on"
                + " the loop | met |"), page);
        assertTrue(page.contains("| `Bridge.sync` allocates ≤ 64 B per call, all threads (JMH `-prof gc`) | 72.000 ± 0.000"
                + " B/op in all, less the harness's own 0.000 (0.0000 B/µs while `spinPingPong`, which allocates nothing,"
                + " ran × 0.50 µs/op): 72.000 B/op | **missed** |"), page);
        assertTrue(page.contains("`future(loop).join()` | 0.60 × | **missed** |"), page);
        assertTrue(page.contains("`supplyAsync(...).join()` | 2.00 × | met |"), page);
        assertTrue(page.contains("| `bridgeSync` | 4 | 0.30 | 2.00 | 13.3* |"), "latency derived by Little's law: " + page);
        assertTrue(page.contains("spin ping-pong 0.10 µs (median per fork: 0.30, 0.0700 µs)."), "a fork in another regime: " + page);
        assertTrue(Files.size(png) > 0, "a chart was drawn");
    }

    @Test
    void aTargetThatFlipsWithinTheErrorIsUncertain() throws Exception {
        Path jdk = Files.createDirectories(dir.resolve("results/jdk17"));
        Files.writeString(jdk.resolve("single.json"), "["
                + entry("SingleCallerBenchmark.bridgeSync", "avgt", 1, "immediate", 0.3, 64.4)
                        .replace("\"scoreError\": \"NaN\"", "\"scoreError\": 0.2")
                        .replace("{\"score\": 64.4}", "{\"score\": 64.4, \"scoreError\": 1.6}")
                + "]");
        Files.writeString(jdk.resolve("floor.json"), "["
                + entry("FloorBenchmark.spinPingPong", "avgt", 1, null, 0.1, 0) + "]");
        String page = render("noisy");
        assertTrue(page.contains("| `Bridge.sync` ≤ 2 × the spin ping-pong floor | 3.00 × | missed by the scores,"
                + " **uncertain** within the error (1.00 to 5.00 ×) |"), page);
        assertTrue(page.contains("(`CallBytes`) | not measured in this run | – |"), page);
        assertTrue(page.contains("all threads (JMH `-prof gc`) | 64.400 ± 1.600 B/op in all, less the harness's own"
                + " 0.000 (0.0000 B/µs while `spinPingPong`, which allocates nothing, ran × 0.30 µs/op): 64.400 B/op |"
                + " missed by the scores, **uncertain** within the error (62.800 to 66.000 B/op) |"), page);
    }

    @Test
    void theHarnessOwnAllocationIsTakenOffAtItsRatePerMicrosecond() throws Exception {
        // The harness allocates 0.01 B per 0.1 µs op of a benchmark that allocates nothing: 0.1 B/µs, so 0.05 B of
        // a 0.5 µs call's 64.03 B are the harness's.
        Path jdk = Files.createDirectories(dir.resolve("results/jdk17"));
        Files.writeString(jdk.resolve("single.json"), "["
                + entry("SingleCallerBenchmark.bridgeSync", "avgt", 1, "immediate", 0.5, 64.03)
                        .replace("{\"score\": 64.03}", "{\"score\": 64.03, \"scoreError\": 0.005}")
                + "]");
        Files.writeString(jdk.resolve("floor.json"), "["
                + entry("FloorBenchmark.spinPingPong", "avgt", 1, null, 0.1, 0.01) + "]");
        String page = render("harness");
        assertTrue(page.contains("all threads (JMH `-prof gc`) | 64.030 ± 0.005 B/op in all, less the harness's own"
                + " 0.050 (0.1000 B/µs while `spinPingPong`, which allocates nothing, ran × 0.50 µs/op): 63.980 B/op |"
                + " met |"), page);
    }

    @Test
    void callBytesMissWhenMoreThanOneCallInAHundredAllocatesMore() throws Exception {
        Path jdk = Files.createDirectories(dir.resolve("results/jdk17"));
        Files.writeString(jdk.resolve("single.json"), "["
                + entry("SingleCallerBenchmark.bridgeSync", "avgt", 1, "immediate", 0.3, 64) + "]");
        Files.writeString(jdk.resolve("callbytes.json"), "{\"calls\": 1000000, \"callerMedianBytes\": 64,"
                + " \"callerMaxBytes\": 96, \"shareAtMost64\": 0.980000, \"callerBytesPerCall\": 64.640,"
                + " \"loopBytesPerCall\": 0.000}");
        String page = render("parked");
        assertTrue(page.contains("| 64 B in 98.000 % of calls, at most 96 B; mean 64.640 B on the caller, 0.000 B on the"
                + " loop | **missed** |"), page);
    }

    @Test
    void theSuspendOnceTargetShowsTheSuspensionAloneAndItsFloorWhenMeasured() throws Exception {
        Path jdk17 = Files.createDirectories(dir.resolve("results/jdk17"));
        Path jdk25 = Files.createDirectories(dir.resolve("results/jdk25"));
        String paired = "{\"rounds\": 15, \"callsPerBlock\": 200000, \"immediateNanos\": 250.0,"
                + " \"suspendOnceNanos\": 450.0, \"ratio\": 1.800, \"ratioMin\": 1.600, \"ratioMax\": 2.000";
        Files.writeString(jdk17.resolve("suspend.json"), paired + ", \"suspensionNanos\": 85.0, \"floorRatio\": 1.340,"
                + " \"floorRatioMin\": 1.300, \"floorRatioMax\": 1.700}");
        Files.writeString(jdk25.resolve("suspend.json"), paired + "}"); // an older run, without the floor
        String page = render("suspend");
        assertTrue(page.contains("(`SuspendCost`, paired in one JVM) | 1.80 × (0.45 vs 0.25 µs; the suspension alone,"
                + " on the loop: 0.0850 µs, floor 1.34 × (1.30 to 1.70)) | **missed** |"), page);
        assertTrue(page.contains("(`SuspendCost`, paired in one JVM) | 1.80 × (0.45 vs 0.25 µs) | **missed** |"), page);
    }

    @Test
    void theDefaultIsJudgedAgainstTheHelperAndAgainstItsDesignByHand() throws Exception {
        // One caller: 0.80 x the helper's throughput, but within 10 % of the same design by hand in every round.
        // Eight callers: within 10 % by the medians only.
        Path jdk = Files.createDirectories(dir.resolve("results/jdk17"));
        Files.writeString(jdk.resolve("single.json"), "["
                + entry("SingleCallerBenchmark.bridgeSync", "avgt", 1, "immediate", 0.3, 64) + "]");
        Files.writeString(jdk.resolve("http-settled.json"), "{\"rounds\": 9, \"windowMillis\": 1500,"
                + " \"warmUpSeconds\": 40, \"results\": ["
                + httpRow(1, "runBlocking", "ratio(1, 1, 1)", "ratio(1, 1, 1)", null)
                + "," + httpRow(1, "bridgeSync", "ratio(0.80, 0.75, 0.85)", "ratio(1.25, 1.2, 1.3)",
                        "ratio(0.98, 0.95, 1.02)")
                + "," + httpRow(8, "bridgeSync", "ratio(0.81, 0.7, 0.9)", "ratio(1.22, 1.1, 1.3)",
                        "ratio(0.97, 0.85, 1.05)")
                + "]}");
        String page = render("hop");
        assertTrue(page.contains("| real HTTP client, 1 caller: `Bridge.sync` (on the loop, the default) throughput"
                + " ≥ 1.0 ×, p50 ≤ 1.0 ×, CPU/request ≤ 1.0 × the `runBlocking` helper (9 rounds of 1500 ms after 40 s"
                + " of warm-up, the targets' ways alone) | 0.80 (0.75–0.85), 1.25 (1.20–1.30), 1.25 (1.20–1.30) |"
                + " **missed** |"), page);
        assertTrue(page.contains("| real HTTP client, 1 caller: `Bridge.sync` (on the loop, the default) within 10 % of"
                + " `future {}` on one shared thread, joined (the default's design by hand) (throughput ≥ 0.9 ×, p50"
                + " ≤ 1.1 ×, CPU/request ≤ 1.1 ×) (9 rounds of 1500 ms after 40 s of warm-up, the targets' ways"
                + " alone) | 0.98 (0.95–1.02), 1.02 (0.98–1.05), 1.02 (0.98–1.05) | met |"), page);
        assertTrue(page.contains("| 0.97 (0.85–1.05), 1.03 (0.95–1.15), 1.03 (0.95–1.15) | met by the medians,"
                + " **uncertain** across the rounds |"), page);
        assertTrue(page.contains("| 1 | `Bridge.sync` (on the loop, the default) | 1000 | 0.80 (0.75–0.85) |"
                + " 1.25 (1.20–1.30) | 1.25 (1.20–1.30) | 0.98 (0.95–1.02) | 1.02 (0.98–1.05) | 1.02 (0.98–1.05) | 800 |"
                + " 10% | 40.0 |"), "the settled table, against the helper and by hand: " + page);
        assertTrue(page.contains("| 1 | `runBlocking { fetch() }` helper (baseline) | 1000 | 1.00 (1.00–1.00) |"
                + " 1.00 (1.00–1.00) | 1.00 (1.00–1.00) | – | – | – |"), "no hand-made ratio where none was measured: " + page);
    }

    /** A settled HTTP row; the hand-made hop's p50 and CPU ratios mirror its throughput ratio. */
    private static String httpRow(int callers, String way, String throughput, String costs, String vsOneThread) {
        String hop = vsOneThread == null ? "" : ", \"vsOneThread\": {\"throughputRatio\": " + json(vsOneThread)
                + ", \"p50Ratio\": " + json(mirror(vsOneThread)) + ", \"cpuRatio\": " + json(mirror(vsOneThread)) + "}";
        return "{\"endpoint\": \"immediate\", \"callers\": " + callers + ", \"way\": \"" + way + "\","
                + " \"requestsPerSecond\": 1000, \"p50Micros\": 900, \"p99Micros\": 2000,"
                + " \"cpuMicrosPerRequest\": 800, \"loopBusy\": 0.1, \"switchesPerRequest\": 40,"
                + " \"throughputRatio\": " + json(throughput) + ", \"p50Ratio\": " + json(costs)
                + ", \"p99Ratio\": " + json(costs) + ", \"cpuRatio\": " + json(costs) + hop + "}";
    }

    /** "ratio(m, a, b)" as the benchmark's JSON. */
    private static String json(String ratio) {
        String[] p = ratio.substring("ratio(".length(), ratio.length() - 1).split(", ");
        return "{\"median\": " + p[0] + ", \"min\": " + p[1] + ", \"max\": " + p[2] + "}";
    }

    /** 2 - x of each figure: a throughput ratio of 0.98 mirrored as a cost ratio of 1.02. */
    private static String mirror(String ratio) {
        String[] p = ratio.substring("ratio(".length(), ratio.length() - 1).split(", ");
        return String.format(java.util.Locale.ROOT, "ratio(%.2f, %.2f, %.2f)", 2 - Double.parseDouble(p[0]),
                2 - Double.parseDouble(p[2]), 2 - Double.parseDouble(p[1]));
    }

    @Test
    void jsonReaderHandlesWhatJmhWrites() {
        Object parsed = Json.parse("[{\"a\": \"NaN\", \"b\": -1.5e-3, \"c\": [true, false, null], \"d\": \"x\\\"y\\u00b5\"}]");
        Map<?, ?> first = (Map<?, ?>) ((List<?>) parsed).get(0);
        assertTrue(Double.isNaN(Result.number(first.get("a"))));
        assertEquals(-0.0015, Result.number(first.get("b")));
        assertEquals(java.util.Arrays.asList(true, false, null), first.get("c"));
        assertEquals("x\"y\u00b5", first.get("d"));
    }

    /** Runs the report on {@code results/} and returns the page it wrote. */
    private String render(String name) throws Exception {
        Path md = dir.resolve(name + ".md");
        Report.main(new String[] {dir.resolve("results").toString(), "quick", md.toString(),
            dir.resolve(name + ".png").toString()});
        return Files.readString(md, StandardCharsets.UTF_8);
    }

    private static String entry(String benchmark, String mode, int threads, String call, double score, double bytes) {
        String params = call == null ? "" : "\"params\": {\"call\": \"" + call + "\"},";
        return "{\"benchmark\": \"io.corobridge.benchmarks." + benchmark + "\", \"mode\": \"" + mode + "\","
                + "\"threads\": " + threads + ", \"vmName\": \"Test VM\", \"vmVersion\": \"17\"," + params
                + "\"primaryMetric\": {\"score\": " + score + ", \"scoreError\": \"NaN\", \"scoreUnit\": \"us/op\"},"
                + "\"secondaryMetrics\": {\"gc.alloc.rate.norm\": {\"score\": " + bytes + "}}}";
    }
}
