package io.corobridge;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.corobridge.core.RunSyncLoop;
import io.corobridge.fixtures.Feeds;
import java.io.IOException;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/** {@link Bridge#stream}: a Kotlin Flow read as a Java Stream, as a Java caller sees it. */
class StreamTest {
    @RegisterExtension
    final TestLoops loops = new TestLoops();

    private final RunSyncLoop loop = loops.create("java-stream");
    private final LoopBridge bridge = Bridge.on(loop);
    private final Feeds feeds = new Feeds();

    @Test
    void aStreamReadsTheFlowInOrder() {
        try (Stream<Integer> numbers = bridge.stream(feeds.numbers(100, new AtomicInteger()))) {
            assertEquals(4950, numbers.mapToInt(Integer::intValue).sum());
        }
        try (Stream<Integer> numbers = Bridge.stream(3, feeds.numbers(5, new AtomicInteger()))) {
            assertEquals(List.of(0, 1, 2, 3, 4), numbers.collect(Collectors.toList()));
        }
    }

    @Test
    void tryWithResourcesAfterLimitCancelsTheFlowBeforeCloseReturns() {
        for (int round = 0; round < 10; round++) {
            CountDownLatch finallyRan = new CountDownLatch(1);
            List<Integer> firstTwo;
            try (Stream<Integer> numbers = bridge.stream(feeds.untilCancelled(5, finallyRan::countDown))) {
                firstTwo = numbers.limit(2).collect(Collectors.toList());
            }
            assertEquals(List.of(0, 1), firstTwo);
            assertEquals(0, finallyRan.getCount(), "the flow's finally ran before close returned");
        }
    }

    @Test
    void aCheckedFailureReachesTheReaderUnchangedAfterTheElementsBeforeIt() {
        IOException failure = new IOException("feed broke");
        List<Integer> read = new ArrayList<>();
        try (Stream<Integer> numbers = bridge.stream(feeds.failingAfter(3, failure))) {
            Throwable thrown = assertThrows(Throwable.class, () -> numbers.forEach(read::add));
            assertSame(failure, thrown, "the checked exception itself, not wrapped");
        }
        assertEquals(List.of(0, 1, 2), read);
    }

    @Test
    void interruptingTheReaderCancelsTheFlowAndKeepsTheFlag() throws Exception {
        CountDownLatch finallyRan = new CountDownLatch(1);
        CountDownLatch readOne = new CountDownLatch(1);
        AtomicReference<Object> seen = new AtomicReference<>();
        Thread reader = new Thread(() -> {
            try (Stream<Integer> numbers = bridge.stream(feeds.untilCancelled(1, finallyRan::countDown))) {
                numbers.forEach(n -> readOne.countDown());
                seen.set("ended");
            } catch (CancellationException e) {
                seen.set(List.of(Thread.currentThread().isInterrupted(), finallyRan.getCount()));
            }
        }, "reader");
        reader.start();
        readOne.await();
        TestThreads.awaitParked(reader);
        reader.interrupt();
        reader.join();
        assertEquals(List.of(true, 0L), seen.get(), "cancelled, flag set, the flow's finally run");
    }

    @Test
    void readingAfterCloseIsRefused() {
        Stream<Integer> numbers = bridge.stream(feeds.numbers(10, new AtomicInteger()));
        Iterator<Integer> iterator = numbers.iterator();
        assertEquals(0, iterator.next());
        numbers.close();
        IllegalStateException refused = assertThrows(IllegalStateException.class, iterator::next);
        assertTrue(refused.getMessage().contains("is closed"), refused.getMessage());
    }

    @Test
    void badArgumentsAreNamed() {
        NullPointerException missing = assertThrows(NullPointerException.class, () -> bridge.stream(null));
        assertEquals("flow must not be null", missing.getMessage());
        IllegalArgumentException small = assertThrows(IllegalArgumentException.class,
                () -> bridge.stream(0, feeds.numbers(1, new AtomicInteger())));
        assertEquals("buffer must be at least 1, was 0", small.getMessage());
    }
}
