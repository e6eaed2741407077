package io.corobridge.examples;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

/** Runs the shared-limits demo: three processes, one PostgreSQL, a limit of 5 that holds across them. */
class SharedLimitsDemoTest {
    @Test
    void threeProcessesShareALimitOfFive() throws Exception {
        String output = PrintedOutput.of(() -> SharedLimitsDemo.main(new String[0]));
        for (int n = 1; n <= 3; n++) {
            assertTrue(output.contains("p" + n + " (pid "), output);
        }
        assertTrue(output.contains("ran 24 queries under db"), output);
        Matcher most = Pattern.compile("most seen: (\\d+)").matcher(output);
        assertTrue(most.find(), output);
        int seen = Integer.parseInt(most.group(1));
        assertTrue(seen >= 1 && seen <= 5, "never more than 5 held at once: " + seen);
        Matcher held = Pattern.compile("db (\\d+)/5 held").matcher(output);
        while (held.find()) {
            assertTrue(Integer.parseInt(held.group(1)) <= 5, output);
        }
    }
}
