package io.corobridge.benchmarks.http;

import static io.corobridge.benchmarks.Args.atLeast;
import static io.corobridge.benchmarks.Args.given;

import io.corobridge.Bridge;
import io.corobridge.benchmarks.ProcStats;
import io.corobridge.core.RunOn;
import io.corobridge.core.SuspendCall;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.lang.management.ManagementFactory;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.TimeUnit;

/**
 * Real I/O through the bridge: a Ktor client (CIO engine, what Kotlin teams use) calls a Ktor server on loopback,
 * started by this program in a child JVM, from 1, 8 and 64 caller threads, each way of calling measured in the same
 * run as the ways a team writes by hand, a {@code runBlocking {}} helper and {@code future {}} on
 * {@code Dispatchers.IO}.
 *
 * <p>A measurement runs every caller in a loop for a window and records each operation's latency, the
 * operations done and the CPU time this process used (the server's is in its own process and not counted). A
 * round measures every way once, in an order that rotates from round to round; the figures reported are the
 * medians over the rounds, and the ratios are taken against the {@code runBlocking} helper of the same round,
 * so that a slow minute of a noisy machine affects both sides of a ratio.
 *
 * <p>Usage: {@code java -cp benchmarks.jar io.corobridge.benchmarks.http.HttpBenchmark [rounds] [windowMillis]
 * [out.json] [ways] [callers] [endpoints] [warmUpSeconds]}: rounds 5, window 1000 ms, JSON to standard output, every
 * way, callers 1,8,64, both endpoints ({@code immediate} or {@code delayed} for one), no warm-up beyond a short one
 * per group unless given ({@code ways} and {@code callers} are comma-separated lists; {@code -} keeps a default).
 * With {@code -Dcorobridge.http.byThread=true} every window also prints, on standard error, each group of threads'
 * context switches and time run and waiting for a processor, per request (Linux {@code /proc}).
 */
public final class HttpBenchmark {
    /** Requests per operation of the gather ways. */
    static final int GATHER = 8;
    static final int DELAY_MS = 10;
    /** The length of the server's answer, "ok". */
    static final int OK_LENGTH = 2;

    private final HttpCalls http;
    private final HttpApi facade;
    private final HttpApi callerThreadFacade;

    private HttpBenchmark(HttpCalls http) {
        this.http = http;
        this.facade = Bridge.facade(HttpApi.class, http);
        this.callerThreadFacade = Bridge.facade(HttpApi.class, http, RunOn.CALLER_THREAD);
    }

    /** One way of calling: performs one operation on {@code path} and returns the requests it made. */
    interface Way {
        int run(String path) throws Exception;
    }

    private Map<String, Way> ways() {
        Map<String, Way> ways = new LinkedHashMap<>();
        ways.put("runBlocking", path -> oneRequest(http.runBlockingFetch(path)));
        ways.put("futureOnIo", path -> oneRequest(http.futureOnIo(path).join()));
        ways.put("futureOnOneThread", path -> oneRequest(http.futureOnOneThread(path).join()));
        ways.put("bridgeSync", path -> oneRequest(Bridge.sync(c -> http.fetch(path, c))));
        ways.put("bridgeSyncCallerThread",
                path -> oneRequest(Bridge.sync(RunOn.CALLER_THREAD, c -> http.fetch(path, c))));
        ways.put("facade", path -> oneRequest(facade.fetch(path)));
        ways.put("facadeCallerThread", path -> oneRequest(callerThreadFacade.fetch(path)));
        ways.put("bridgeAsyncJoin", path -> oneRequest(Bridge.<Integer>async(c -> http.fetch(path, c)).join()));
        ways.put("gatherRunBlocking", path -> requests(http.runBlockingFetchAll(path, GATHER)));
        ways.put("gatherFutureOnIo", path -> requests(http.futureOnIoAll(path, GATHER).join()));
        ways.put("bridgeGather", path -> {
            List<SuspendCall<Integer>> calls = new ArrayList<>(GATHER);
            for (int i = 0; i < GATHER; i++) calls.add(c -> http.fetch(path, c));
            return requests(Bridge.gather(calls));
        });
        return ways;
    }

    /**
     * Checks one response's body length ("ok") and counts the request. The figures per request divide by this
     * count: until it existed the body's length was counted instead, so that every single-request way reported
     * twice its requests per second and half its CPU and switches per request (ratios were not affected).
     */
    private static int oneRequest(int bodyLength) {
        if (bodyLength != OK_LENGTH) throw new IllegalStateException("a response had " + bodyLength + " characters");
        return 1;
    }

    /** Checks that a gather way made its {@link #GATHER} requests, each answered "ok", and counts them. */
    private static int requests(List<Integer> bodyLengths) {
        if (bodyLengths.size() != GATHER) {
            throw new IllegalStateException("a gather made " + bodyLengths.size() + " requests, not " + GATHER);
        }
        for (int length : bodyLengths) oneRequest(length);
        return bodyLengths.size();
    }

    /** What one way did in one window. */
    record Sample(double opsPerSecond, double requestsPerSecond, double p50Micros, double p99Micros,
            double cpuMicrosPerRequest, double loopBusy, double switchesPerRequest) {}

    /** The default loop's thread, whose CPU time tells how busy it was. */
    private final long loopThreadId = Bridge.<Thread>sync(c -> Thread.currentThread()).getId();

    private Sample measure(Way way, String path, int callers, long windowNanos) throws Exception {
        long warmUpNanos = Math.max(windowNanos / 4, TimeUnit.MILLISECONDS.toNanos(200));
        CyclicBarrier start = new CyclicBarrier(callers + 1);
        long[][] latencies = new long[callers][];
        int[] counts = new int[callers];
        long[] requests = new long[callers];
        Throwable[] failures = new Throwable[callers];
        // Written once by this thread after the barrier; callers read them.
        long[] window = new long[2];
        // A caller that has passed the window waits here until the window's counters are read: /proc counts only
        // live threads, so a caller that ended first would take its switches out of the sum instead of adding them.
        CountDownLatch counted = new CountDownLatch(1);
        Thread[] threads = new Thread[callers];
        for (int t = 0; t < callers; t++) {
            int id = t;
            threads[t] = new Thread(() -> {
                long[] mine = new long[1 << 14];
                int n = 0;
                long made = 0;
                try {
                    start.await();
                    long recordFrom = window[0];
                    long end = window[1];
                    while (true) {
                        long t0 = System.nanoTime();
                        if (t0 - end >= 0) break;
                        int r = way.run(path);
                        long t1 = System.nanoTime();
                        if (t0 - recordFrom >= 0 && t1 - end < 0) {
                            if (n == mine.length) mine = Arrays.copyOf(mine, n * 2);
                            mine[n++] = t1 - t0;
                            made += r;
                        }
                    }
                    counted.await();
                } catch (Throwable e) {
                    failures[id] = e;
                }
                latencies[id] = mine;
                counts[id] = n;
                requests[id] = made;
            }, "http-caller-" + t);
            threads[t].setDaemon(true); // should the main thread fail before counting down, callers must not hold the JVM
            threads[t].start();
        }
        long now = System.nanoTime();
        window[0] = now + warmUpNanos;
        window[1] = window[0] + windowNanos;
        start.await();
        // The CPU counted is that of the recorded window, read as close to its edges as a plain thread can.
        long sleepToStart = window[0] - System.nanoTime();
        if (sleepToStart > 0) TimeUnit.NANOSECONDS.sleep(sleepToStart);
        long cpu0 = processCpuNanos();
        long loop0 = THREADS.getThreadCpuTime(loopThreadId);
        long switches0 = ProcStats.contextSwitches();
        Map<String, long[]> byName0 = BY_THREAD ? ProcStats.switchesByThreadName() : null;
        long sleepToEnd = window[1] - System.nanoTime();
        if (sleepToEnd > 0) TimeUnit.NANOSECONDS.sleep(sleepToEnd);
        long cpu1 = processCpuNanos();
        long loop1 = THREADS.getThreadCpuTime(loopThreadId);
        long switches1 = ProcStats.contextSwitches();
        Map<String, long[]> byName1 = BY_THREAD ? ProcStats.switchesByThreadName() : null;
        counted.countDown();
        for (Thread thread : threads) thread.join();
        for (Throwable failure : failures) {
            if (failure != null) throw new IllegalStateException("a caller failed", failure);
        }
        int total = 0;
        long made = 0;
        for (int t = 0; t < callers; t++) {
            total += counts[t];
            made += requests[t];
        }
        long[] all = new long[total];
        int at = 0;
        for (int t = 0; t < callers; t++) {
            System.arraycopy(latencies[t], 0, all, at, counts[t]);
            at += counts[t];
        }
        Arrays.sort(all);
        if (BY_THREAD && made > 0) {
            StringBuilder line = new StringBuilder("   per request, by thread: switches voluntary+not, us ran, us waited ready:");
            for (Map.Entry<String, long[]> e : byName1.entrySet()) {
                long[] before = byName0.getOrDefault(e.getKey(), new long[4]);
                double v = (e.getValue()[0] - before[0]) / (double) made;
                double n = (e.getValue()[1] - before[1]) / (double) made;
                double ran = (e.getValue()[2] - before[2]) / 1e3 / made;
                double waited = (e.getValue()[3] - before[3]) / 1e3 / made;
                if (v + n >= 0.05 || ran >= 1) {
                    line.append(String.format(Locale.ROOT, "  %s %.2f+%.2f ran %.0f waited %.0f",
                            e.getKey(), v, n, ran, waited));
                }
            }
            System.err.println(line);
        }
        double seconds = windowNanos / 1e9;
        return new Sample(total / seconds, made / seconds, percentile(all, 0.50) / 1e3, percentile(all, 0.99) / 1e3,
                made == 0 ? Double.NaN : (cpu1 - cpu0) / 1e3 / made, (loop1 - loop0) / (double) windowNanos,
                made == 0 || switches0 < 0 ? Double.NaN : (switches1 - switches0) / (double) made);
    }

    private static double percentile(long[] sorted, double q) {
        if (sorted.length == 0) return Double.NaN;
        return sorted[Math.min(sorted.length - 1, (int) Math.floor(q * sorted.length))];
    }

    /** Whether each window prints its context switches by thread name on standard error. */
    private static final boolean BY_THREAD = Boolean.getBoolean("corobridge.http.byThread");

    private static final java.lang.management.ThreadMXBean THREADS = ManagementFactory.getThreadMXBean();

    private static long processCpuNanos() {
        return ((com.sun.management.OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean())
                .getProcessCpuTime();
    }

    public static void main(String[] args) throws Exception {
        int rounds = given(args, 0) ? atLeast(1, args[0], "rounds") : 5;
        long windowNanos = TimeUnit.MILLISECONDS.toNanos(given(args, 1) ? atLeast(1, args[1], "windowMillis") : 1000);
        Path out = given(args, 2) ? Path.of(args[2]) : null;
        List<String> wayFilter = given(args, 3) ? List.of(args[3].split(",")) : null;
        int[] callerCounts = given(args, 4)
                ? Arrays.stream(args[4].split(",")).mapToInt(n -> atLeast(1, n, "callers")).toArray()
                : new int[] {1, 8, 64};
        int warmUpSeconds = given(args, 6) ? atLeast(0, args[6], "warmUpSeconds") : 0;

        Process server = startServer();
        try (HttpCalls http = new HttpCalls("http://127.0.0.1:" + readPort(server))) {
            HttpBenchmark bench = new HttpBenchmark(http);
            Map<String, Way> ways = bench.ways();
            String[] paths = !given(args, 5) ? new String[] {"now", "delay?ms=" + DELAY_MS}
                    : switch (args[5]) {
                        case "immediate" -> new String[] {"now"};
                        case "delayed" -> new String[] {"delay?ms=" + DELAY_MS};
                        default -> throw new IllegalArgumentException(
                                "endpoints must be immediate, delayed or -, was " + args[5]);
                    };
            List<String> unknown = new ArrayList<>(wayFilter == null ? List.of() : wayFilter);
            unknown.removeAll(ways.keySet());
            if (!unknown.isEmpty()) {
                throw new IllegalArgumentException("no way named " + unknown + "; the ways are " + ways.keySet());
            }
            if (wayFilter != null) ways.keySet().retainAll(wayFilter);
            List<String> names = new ArrayList<>(ways.keySet());
            StringBuilder json = new StringBuilder();
            json.append(String.format(Locale.ROOT,
                    "{\"rounds\": %d, \"windowMillis\": %d, \"warmUpSeconds\": %d, \"gather\": %d, \"delayMillis\": %d, \"cores\": %d, \"results\": [",
                    rounds, TimeUnit.NANOSECONDS.toMillis(windowNanos), warmUpSeconds, GATHER, DELAY_MS,
                    Runtime.getRuntime().availableProcessors()));
            // Both JVMs compile code for a minute or more under this load, and throughput rose six-fold over the
            // first 60 s: a window measured meanwhile measures the compiler, and the way whose work funnels into
            // one thread (the loop) suffers most from code that is still slow. So every way runs, in turn, on
            // every endpoint, until the warm-up time has passed, before any window is recorded.
            long warmUpEnd = System.nanoTime() + TimeUnit.SECONDS.toNanos(warmUpSeconds);
            int warmUpCallers = Math.min(8, Arrays.stream(callerCounts).max().orElse(8));
            while (System.nanoTime() - warmUpEnd < 0) {
                for (String path : paths) {
                    for (String name : names) bench.measure(ways.get(name), path, warmUpCallers, windowNanos / 4);
                }
            }
            boolean first = true;
            for (String path : paths) {
                String endpoint = path.startsWith("now") ? "immediate" : "delayed";
                for (int callers : callerCounts) {
                    Map<String, List<Sample>> samples = new LinkedHashMap<>();
                    for (String name : names) samples.put(name, new ArrayList<>());
                    // Warm every way up once (JIT, connections), unrecorded.
                    for (String name : names) bench.measure(ways.get(name), path, callers, windowNanos / 4);
                    for (int round = 0; round < rounds; round++) {
                        for (int i = 0; i < names.size(); i++) {
                            String name = names.get((i + round) % names.size());
                            Sample sample = bench.measure(ways.get(name), path, callers, windowNanos);
                            samples.get(name).add(sample);
                            if (BY_THREAD) {
                                System.err.printf(Locale.ROOT, "   round %d %s: %.0f req/s, cpu %.0f us/req%n", round,
                                        name, sample.requestsPerSecond(), sample.cpuMicrosPerRequest());
                            }
                        }
                    }
                    for (String name : names) {
                        List<Sample> mine = samples.get(name);
                        String base = name.startsWith("gather") || name.equals("bridgeGather")
                                ? "gatherRunBlocking" : "runBlocking";
                        List<Sample> baseline = samples.get(base);
                        json.append(first ? "\n  " : ",\n  ");
                        first = false;
                        json.append(String.format(Locale.ROOT,
                                "{\"endpoint\": \"%s\", \"callers\": %d, \"way\": \"%s\", \"baseline\": \"%s\", "
                                        + "\"requestsPerSecond\": %.1f, \"p50Micros\": %.1f, \"p99Micros\": %.1f, "
                                        + "\"cpuMicrosPerRequest\": %.1f, \"loopBusy\": %.3f, \"switchesPerRequest\": %.2f",
                                endpoint, callers, name, baseline == null ? "" : base,
                                median(mine, Sample::requestsPerSecond), median(mine, Sample::p50Micros),
                                median(mine, Sample::p99Micros), median(mine, Sample::cpuMicrosPerRequest),
                                median(mine, Sample::loopBusy), median(mine, Sample::switchesPerRequest)));
                        if (baseline != null) {
                            json.append(String.format(Locale.ROOT,
                                    ", \"throughputRatio\": %s, \"p50Ratio\": %s, \"p99Ratio\": %s, \"cpuRatio\": %s",
                                    ratios(mine, baseline, Sample::requestsPerSecond),
                                    ratios(mine, baseline, Sample::p50Micros),
                                    ratios(mine, baseline, Sample::p99Micros),
                                    ratios(mine, baseline, Sample::cpuMicrosPerRequest)));
                        }
                        List<Sample> oneThread = samples.get("futureOnOneThread");
                        if (oneThread != null && !name.equals("futureOnOneThread") && !base.equals("gatherRunBlocking")) {
                            // Against the default's design written by hand: what a way costs beyond the one hop.
                            json.append(String.format(Locale.ROOT,
                                    ", \"vsOneThread\": {\"throughputRatio\": %s, \"p50Ratio\": %s, \"cpuRatio\": %s}",
                                    ratios(mine, oneThread, Sample::requestsPerSecond),
                                    ratios(mine, oneThread, Sample::p50Micros),
                                    ratios(mine, oneThread, Sample::cpuMicrosPerRequest)));
                        }
                        json.append('}');
                        System.err.printf(Locale.ROOT, "%-9s %3d callers %-22s %7.0f req/s  p50 %6.0f us  p99 %6.0f us  cpu %5.0f us/req  loop %3.0f%%  switches %4.1f/req%n",
                                endpoint, callers, name, median(mine, Sample::requestsPerSecond),
                                median(mine, Sample::p50Micros), median(mine, Sample::p99Micros),
                                median(mine, Sample::cpuMicrosPerRequest), 100 * median(mine, Sample::loopBusy), median(mine, Sample::switchesPerRequest));
                    }
                }
            }
            json.append("\n]}\n");
            if (out == null) System.out.print(json);
            else Files.writeString(out, json, StandardCharsets.UTF_8);
        } finally {
            server.getOutputStream().close(); // the server stops when its input ends
            if (!server.waitFor(10, TimeUnit.SECONDS)) server.destroyForcibly().waitFor();
        }
    }

    /** {"median": m, "min": a, "max": b} of this way's figure over the baseline's, round by round. */
    private static String ratios(List<Sample> mine, List<Sample> base, java.util.function.ToDoubleFunction<Sample> f) {
        double[] r = new double[mine.size()];
        for (int i = 0; i < r.length; i++) r[i] = f.applyAsDouble(mine.get(i)) / f.applyAsDouble(base.get(i));
        Arrays.sort(r);
        return String.format(Locale.ROOT, "{\"median\": %.3f, \"min\": %.3f, \"max\": %.3f}",
                median(r), r[0], r[r.length - 1]);
    }

    private static double median(List<Sample> samples, java.util.function.ToDoubleFunction<Sample> f) {
        return median(samples.stream().mapToDouble(f).sorted().toArray());
    }

    private static double median(double[] sorted) {
        int n = sorted.length;
        return n % 2 == 1 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
    }

    private static Process startServer() throws IOException {
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        return new ProcessBuilder(java, "-Xmx256m", "-cp", System.getProperty("java.class.path"),
                HttpServerMain.class.getName())
                .redirectError(ProcessBuilder.Redirect.INHERIT)
                .start();
    }

    private static int readPort(Process server) throws IOException {
        BufferedReader reader = new BufferedReader(new InputStreamReader(server.getInputStream(), StandardCharsets.UTF_8));
        String line = reader.readLine();
        if (line == null || !line.startsWith("port ")) {
            throw new IllegalStateException("the HTTP server did not start; it printed " + line);
        }
        return Integer.parseInt(line.substring("port ".length()).trim());
    }
}
