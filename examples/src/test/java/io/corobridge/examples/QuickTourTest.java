package io.corobridge.examples;

import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/** Runs the README's main job and checks what it reports, so the example cannot rot. */
class QuickTourTest {
    @Test
    void quickTourShowsEachKindOfCallAndItsThreads() throws Exception {
        String output = PrintedOutput.of(() -> QuickTour.main(new String[0]));
        assertTrue(output.contains("stock(apple) = 12, computed on 'corobridge-loop-default'"), output);
        assertTrue(output.contains("thenApply ran on 'corobridge-loop-default'"), output);
        assertTrue(output.contains("kiwi  = 21  (caller 'caller-kiwi', ran on 'corobridge-loop-default')"), output);
        assertTrue(output.contains("caught java.io.IOException: no shelf holds \"durian\""), output);
        assertTrue(output.contains("   value apple = 12\n   failure java.io.IOException: no shelf holds \"durian\"\n"
                + "   value kiwi = 21"), output);
        int first = output.indexOf("first shelf with more than 10: apple");
        int finallyRan = output.indexOf("(the flow's finally ran on 'corobridge-loop-default')");
        int closed = output.indexOf("closing the stream cancelled the flow");
        assertTrue(first > 0 && first < finallyRan && finallyRan < closed, output);
    }
}
