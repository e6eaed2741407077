package io.corobridge.examples;

import static org.junit.jupiter.api.Assertions.assertTrue;

import io.corobridge.core.ContextPropagation;
import org.junit.jupiter.api.Test;

/** Runs the context example: the SLF4J MDC carrier, found at run time, against the real SLF4J. */
class ContextTourTest {
    @Test
    void eachRequestSeesItsOwnMdcOnTheLoopAndOnAWorkerAndNothingIsLeftBehind() throws Exception {
        String output = PrintedOutput.of(() -> ContextTour.main(new String[0]));
        for (String id : new String[] {"r-1", "r-2", "r-3"}) {
            String expected = "request " + id + ": on corobridge-loop-default " + id + ", after suspending " + id
                    + "; on corobridge-worker-default " + id;
            assertTrue(output.contains(expected), "expected \"" + expected + "\" in:\n" + output);
        }
        assertTrue(output.contains("the loop thread's own MDC afterwards: null"), output);
        assertTrue(ContextPropagation.getCarriers().isEmpty(), "the example unregistered its carrier");
    }
}
