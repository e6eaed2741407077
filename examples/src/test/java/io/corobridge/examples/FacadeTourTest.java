package io.corobridge.examples;

import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/** Runs the facade example and checks what it prints, so it cannot rot. */
class FacadeTourTest {
    @Test
    void facadeTourUsesTheRepositoryThroughItsJavaInterface() throws Exception {
        String output = PrintedOutput.of(() -> FacadeTour.main(new String[0]));
        assertTrue(output.contains("count() = 2"), output);
        assertTrue(output.contains("find(1) = User(id=1, name=Ada)"), output);
        assertTrue(output.contains("joined: User(id=2, name=Grace)"), output);
        assertTrue(output.contains("describe(2) = Grace (#2)"), output);
        assertTrue(output.contains("find(3) threw java.util.NoSuchElementException: no user 3"), output);
    }
}
