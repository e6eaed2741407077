package io.corobridge;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.corobridge.fixtures.UserService;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * The JVM shutdown hook closes the default loop: work in flight is cancelled, its finally blocks run, and then
 * the shutdown callbacks run.
 */
class ShutdownHookTest {
    @Test
    void exitingTheJvmClosesTheDefaultLoop() throws Exception {
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        Process child = new ProcessBuilder(java, "-cp", System.getProperty("java.class.path"), Child.class.getName())
                .redirectErrorStream(true)
                .start();
        assertTrue(child.waitFor(60, TimeUnit.SECONDS), "the child JVM exited");
        String output = new String(child.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertEquals(0, child.exitValue(), output);
        assertTrue(output.contains("started on corobridge-loop-default"), output);
        assertTrue(output.contains("finally ran on corobridge-loop-default"), output);
        assertTrue(output.contains("shutdown callback ran on corobridge-loop-default"), output);
        assertTrue(output.indexOf("finally ran") < output.indexOf("shutdown callback ran"),
                "the callback ran after the work in flight had ended:\n" + output);
    }

    /** Starts a call on the default loop that waits forever, then exits the JVM. */
    public static final class Child {
        public static void main(String[] args) throws InterruptedException, IOException {
            UserService users = new UserService();
            CountDownLatch started = new CountDownLatch(1);
            Bridge.async(c -> users.waitUntilCancelled(() -> {
                System.out.println("started on " + Thread.currentThread().getName());
                started.countDown();
            }, () -> System.out.println("finally ran on " + Thread.currentThread().getName()), c));
            Bridge.onShutdown(() -> System.out.println("shutdown callback ran on " + Thread.currentThread().getName()));
            started.await();
            System.out.flush();
            System.exit(0);
        }
    }
}
