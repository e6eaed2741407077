package io.corobridge.examples;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import jdk.jfr.consumer.RecordedEvent;
import jdk.jfr.consumer.RecordingFile;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * What an operator does, checked: record the PoolDemo example with JDK Flight Recorder from the command line
 * (the documented options, in a JVM of its own), then read the file back with jdk.jfr.consumer, which is what
 * {@code jfr print} shows: corobridge's call and stall events are there with their fields.
 */
class FlightRecordingTest {
    @TempDir
    Path dir;

    @Test
    void aRecordingOfTheExampleHoldsItsCallsAndItsStallWithTheirFields() throws Exception {
        Path file = dir.resolve("pool-demo.jfr");
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        Process demo = new ProcessBuilder(java,
                "-XX:StartFlightRecording:filename=" + file + ",+io.corobridge.Call#enabled=true,+io.corobridge.Stall#enabled=true",
                "-cp", System.getProperty("java.class.path"), PoolDemo.class.getName())
                .redirectErrorStream(true)
                .start();
        String output = new String(demo.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(demo.waitFor(60, TimeUnit.SECONDS), "the demo ended");
        assertEquals(0, demo.exitValue(), output);
        assertTrue(Files.size(file) > 0, "a recording was written: " + output);

        List<RecordedEvent> events = RecordingFile.readAllEvents(file);
        List<RecordedEvent> calls = ofType(events, "io.corobridge.Call");
        List<RecordedEvent> stalls = ofType(events, "io.corobridge.Stall");
        assertEquals(2, calls.size(), "one runSync call per mode of the demo: " + calls);
        for (RecordedEvent call : calls) {
            assertEquals("pool-demo", call.getString("loop"));
            assertTrue(call.getDuration().compareTo(Duration.ZERO) > 0, "a call lasts: " + call);
            assertEquals("main", call.getThread().getJavaName(), "recorded on the caller's thread");
        }
        assertTrue(!stalls.isEmpty(), "the blocking mode stalls the loop: " + output);
        for (RecordedEvent stall : stalls) {
            assertEquals("pool-demo", stall.getString("loop"));
            assertTrue(stall.getDuration("length").compareTo(Duration.ofMillis(100)) >= 0, "past the 100 ms threshold: " + stall);
            assertTrue(stall.getString("loopStack").contains("PoolDemo.recalculateReport"), "names the blocking line: " + stall);
            assertEquals("corobridge-watchdog", stall.getThread().getJavaName());
        }
    }

    private static List<RecordedEvent> ofType(List<RecordedEvent> events, String name) {
        return events.stream().filter(e -> e.getEventType().getName().equals(name)).collect(Collectors.toList());
    }
}
