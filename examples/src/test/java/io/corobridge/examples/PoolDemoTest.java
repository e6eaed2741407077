package io.corobridge.examples;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.corobridge.core.RunSyncLoop;
import java.sql.SQLTransientConnectionException;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.logging.Handler;
import java.util.logging.Level;
import java.util.logging.LogRecord;
import java.util.logging.Logger;
import java.util.stream.Collectors;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The forum thread's failure, reproduced with a real pool (HikariCP) over a real embedded database (H2): blocking
 * code on the loop starves the pool; the same code in a worker thread does not.
 */
class PoolDemoTest {
    private final Logger corobridge = Logger.getLogger(RunSyncLoop.class.getName());
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
        corobridge.addHandler(capture);
    }

    @AfterEach
    void stopCapturing() {
        corobridge.removeHandler(capture);
        List<String> left = Thread.getAllStackTraces().keySet().stream()
                .filter(t -> t.isAlive() && t.getName().startsWith("corobridge-") && t.getName().contains("pool-demo"))
                .map(Thread::getName)
                .collect(Collectors.toList());
        assertEquals(List.of(), left, "threads left behind");
    }

    @Test
    void blockingCodeOnTheLoopMakesTasksTimeOutInThePool() {
        PoolDemo.Outcome outcome = PoolDemo.run(PoolDemo.Mode.BLOCKING_ON_LOOP);
        assertTrue(outcome.getSucceeded() < PoolDemo.TASKS, "some tasks failed: " + outcome.getFailures());
        for (Throwable failure : outcome.getFailures()) {
            assertTrue(failure instanceof SQLTransientConnectionException
                    || failure.getCause() instanceof SQLTransientConnectionException,
                    "failed waiting for a connection: " + failure);
        }
        LogRecord stall = warnings.stream()
                .filter(r -> r.getMessage().contains("loop \"pool-demo\" has been busy"))
                .findFirst()
                .orElseThrow(() -> new AssertionError("no stall reported: " + warnings));
        assertTrue(stall.getMessage().contains("PoolDemo.recalculateReport"), stall.getMessage());
        assertTrue(outcome.getStats().getStalls() >= 1, outcome.getStats().toString());
    }

    @Test
    void theSameCodeInAWorkerThreadLetsEveryTaskSucceed() {
        PoolDemo.Outcome outcome = PoolDemo.run(PoolDemo.Mode.WORKER_THREAD);
        assertEquals(List.of(), outcome.getFailures());
        assertEquals(PoolDemo.TASKS, outcome.getSucceeded());
        assertTrue(warnings.stream().noneMatch(r -> r.getMessage().contains("PoolDemo.recalculateReport")),
                "no stall in the report code: " + warnings);
    }
}
