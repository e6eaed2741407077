package io.corobridge;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.corobridge.core.ReentryPolicy;
import io.corobridge.core.RunSyncLoop;
import io.corobridge.fixtures.UserService;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.logging.Handler;
import java.util.logging.Level;
import java.util.logging.LogRecord;
import java.util.logging.Logger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/** A blocking call made on a loop thread, where waiting would deadlock. */
class ReentryTest {
    @RegisterExtension
    final TestLoops loops = new TestLoops();

    private final RunSyncLoop loop = loops.create("java-reentry");
    private final LoopBridge bridge = Bridge.on(loop);
    private final UserService users = new UserService();
    private final Logger logger = Logger.getLogger(RunSyncLoop.class.getName());
    private final List<LogRecord> warnings = new CopyOnWriteArrayList<>();
    private final Handler capture = new Handler() {
        @Override
        public void publish(LogRecord record) {
            if (record.getLevel() == Level.WARNING) {
                warnings.add(record);
            }
        }

        @Override
        public void flush() {}

        @Override
        public void close() {}
    };

    @BeforeEach
    void captureWarnings() {
        logger.addHandler(capture);
        logger.setUseParentHandlers(false); // checked here, not printed to the build log
    }

    @AfterEach
    void cleanUp() {
        logger.removeHandler(capture);
        logger.setUseParentHandlers(true);
    }

    @Test
    void newThreadPolicyRunsNestedCallsThreeLevelsDeepWithoutDeadlock() {
        List<String> threads = bridge.sync(c -> users.callBack(() -> {
            String level1 = Thread.currentThread().getName();
            return bridge.sync(c2 -> users.callBack(() -> {
                String level2 = Thread.currentThread().getName();
                String level3 = bridge.sync(c3 -> users.callBack(() -> Thread.currentThread().getName(), c3));
                return List.of(level1, level2, level3);
            }, c2));
        }, c));
        assertEquals("corobridge-loop-java-reentry", threads.get(0));
        assertTrue(threads.get(1).startsWith("corobridge-loop-java-reentry-reentry-"), threads.toString());
        assertTrue(threads.get(2).startsWith("corobridge-loop-java-reentry-reentry-"), threads.toString());
        assertNotEquals(threads.get(1), threads.get(2));
    }

    @Test
    void newThreadPolicyWarnsOncePerCallSite() {
        for (int i = 0; i < 3; i++) {
            bridge.sync(c -> users.callBack(this::reenterFromHere, c));
        }
        List<String> here = warnings.stream().map(LogRecord::getMessage)
                .filter(m -> m.contains("reenterFromHere")).toList();
        assertEquals(1, here.size(), here.toString());
        assertTrue(here.get(0).contains("ReentryTest.java"), here.get(0));
        assertTrue(here.get(0).contains("Bridge.async"), "names the alternative: " + here.get(0));
    }

    private String reenterFromHere() {
        return bridge.sync(c -> users.immediate(7, c));
    }

    @Test
    void failPolicyThrowsAtEveryLevel() {
        loop.setReentryPolicy(ReentryPolicy.FAIL);
        IllegalStateException thrown = assertThrows(IllegalStateException.class,
                () -> bridge.sync(c -> users.callBack(() -> bridge.sync(c2 -> users.load(1, c2)), c)));
        assertTrue(thrown.getMessage().contains("would deadlock"), thrown.getMessage());

        // Third level: this loop allows level two on a new thread; the strict loop refuses level three.
        loop.setReentryPolicy(ReentryPolicy.NEW_THREAD);
        try (RunSyncLoop strict = RunSyncLoop.create("java-reentry-strict")) {
            strict.setReentryPolicy(ReentryPolicy.FAIL);
            LoopBridge strictBridge = Bridge.on(strict);
            IllegalStateException deep = assertThrows(IllegalStateException.class,
                    () -> bridge.sync(c -> users.callBack(
                            () -> bridge.sync(c2 -> users.callBack(
                                    () -> strictBridge.sync(c3 -> users.load(3, c3)), c2)), c)));
            assertTrue(deep.getMessage().contains("\"java-reentry-strict\""), deep.getMessage());
        }
        assertEquals("user-9", bridge.sync(c -> users.load(9, c)), "the loop still serves");
    }
}
