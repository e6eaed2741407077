package io.corobridge.benchmarks.report;

import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/** One JMH result: a benchmark method, in one mode, with one set of parameters, on one JDK. */
record Result(
        String jdk,
        String vm,
        String benchmark,
        String method,
        String mode,
        int threads,
        Map<String, String> params,
        double score,
        double error,
        String unit,
        double bytesPerOp,
        double bytesError,
        List<Double> forkMedians) {

    /** Reads the entries of a JMH JSON result file. */
    @SuppressWarnings("unchecked")
    static void read(String jdk, List<Object> entries, List<Result> into) {
        for (Object entry : entries) {
            Map<String, Object> e = (Map<String, Object>) entry;
            String full = (String) e.get("benchmark");
            String[] parts = full.split("\\.");
            Map<String, Object> primary = (Map<String, Object>) e.get("primaryMetric");
            Map<String, Object> secondary = (Map<String, Object>) e.getOrDefault("secondaryMetrics", Map.of());
            Map<String, Object> alloc = (Map<String, Object>) secondary.get("gc.alloc.rate.norm");
            Map<String, String> params = new TreeMap<>();
            Map<String, Object> rawParams = (Map<String, Object>) e.getOrDefault("params", Map.of());
            rawParams.forEach((k, v) -> params.put(k, String.valueOf(v)));
            into.add(new Result(
                    jdk,
                    e.get("vmName") + " " + e.get("vmVersion"),
                    parts[parts.length - 2],
                    parts[parts.length - 1],
                    (String) e.get("mode"),
                    (int) number(e.get("threads")),
                    params,
                    number(primary.get("score")),
                    number(primary.get("scoreError")),
                    (String) primary.get("scoreUnit"),
                    alloc == null ? Double.NaN : number(alloc.get("score")),
                    alloc == null ? Double.NaN : number(alloc.get("scoreError")),
                    forkMedians((List<Object>) primary.getOrDefault("rawData", List.of()))));
        }
    }

    /** The median score of each fork's iterations, in fork order: shows a fork that ran in another regime. */
    @SuppressWarnings("unchecked")
    private static List<Double> forkMedians(List<Object> rawData) {
        return rawData.stream().map(fork -> {
            double[] scores = ((List<Object>) fork).stream().mapToDouble(Result::number).sorted().toArray();
            int mid = scores.length / 2;
            return scores.length % 2 == 1 ? scores[mid] : (scores[mid - 1] + scores[mid]) / 2;
        }).toList();
    }

    static double number(Object value) {
        if (value instanceof Number n) {
            return n.doubleValue();
        }
        return value == null ? Double.NaN : Double.parseDouble(value.toString());
    }
}
