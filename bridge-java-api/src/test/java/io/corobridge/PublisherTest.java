package io.corobridge;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.corobridge.core.RunSyncLoop;
import io.corobridge.fixtures.Feeds;
import java.io.IOException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Flow;
import java.util.concurrent.SubmissionPublisher;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import kotlin.Unit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/** {@link Bridge#publisher} and {@link Bridge#flow}: Kotlin flows and JDK publishers, both ways. */
class PublisherTest {
    @RegisterExtension
    final TestLoops loops = new TestLoops();

    private final RunSyncLoop loop = loops.create("java-publisher");
    private final LoopBridge bridge = Bridge.on(loop);
    private final Feeds feeds = new Feeds();

    /** Records every signal; requests nothing by itself. */
    static final class Recorder<T> implements Flow.Subscriber<T> {
        final List<Object> items = Collections.synchronizedList(new ArrayList<>());
        final List<String> threads = Collections.synchronizedList(new ArrayList<>());
        final AtomicReference<Throwable> error = new AtomicReference<>();
        final CountDownLatch done = new CountDownLatch(1);
        volatile Flow.Subscription subscription;

        @Override public void onSubscribe(Flow.Subscription s) { subscription = s; }
        @Override public void onNext(T item) {
            items.add(item);
            threads.add(Thread.currentThread().getName().split(" @")[0]);
        }
        @Override public void onError(Throwable t) { error.set(t); done.countDown(); }
        @Override public void onComplete() { done.countDown(); }
    }

    /** Returns once the loop has run everything queued before now. */
    private void settle() {
        bridge.sync(c -> Unit.INSTANCE);
    }

    @Test
    void theFlowEmitsOnlyWhatIsRequestedAndSignalsOnTheLoopThread() throws Exception {
        AtomicInteger emitted = new AtomicInteger();
        Recorder<Integer> recorder = new Recorder<>();
        bridge.publisher(feeds.numbers(5, emitted)).subscribe(recorder);
        recorder.subscription.request(2);
        settle();
        assertEquals(List.of(0, 1), recorder.items);
        assertEquals(2, emitted.get(), "the flow waits for demand");
        recorder.subscription.request(10);
        recorder.done.await();
        assertEquals(List.of(0, 1, 2, 3, 4), recorder.items);
        assertNull(recorder.error.get());
        assertEquals(List.of("corobridge-loop-java-publisher"), recorder.threads.stream().distinct().toList());
    }

    @Test
    void cancellingTheSubscriptionCancelsTheFlow() throws Exception {
        CountDownLatch finallyRan = new CountDownLatch(1);
        Recorder<Integer> recorder = new Recorder<>();
        bridge.publisher(feeds.untilCancelled(1, finallyRan::countDown)).subscribe(recorder);
        recorder.subscription.request(5);
        settle();
        recorder.subscription.cancel();
        finallyRan.await();
        assertEquals(List.of(0), recorder.items);
    }

    @Test
    void aFailureReachesOnErrorUnchanged() throws Exception {
        IOException failure = new IOException("feed broke");
        Recorder<Integer> recorder = new Recorder<>();
        Bridge.publisher(feeds.failingAfter(2, failure)).subscribe(recorder);
        recorder.subscription.request(Long.MAX_VALUE);
        recorder.done.await();
        assertEquals(List.of(0, 1), recorder.items);
        assertSame(failure, recorder.error.get());
    }

    @Test
    void aNullElementEndsTheSubscriptionWithAnError() throws Exception {
        Recorder<String> recorder = new Recorder<>();
        bridge.publisher(feeds.withNull()).subscribe(recorder);
        recorder.subscription.request(Long.MAX_VALUE);
        recorder.done.await();
        assertEquals(List.of("a"), recorder.items);
        NullPointerException npe = assertInstanceOf(NullPointerException.class, recorder.error.get());
        assertTrue(npe.getMessage().contains("emitted null"), npe.getMessage());
    }

    @Test
    void closingTheLoopEndsEverySubscriptionWithAnError() throws Exception {
        RunSyncLoop closing = RunSyncLoop.create("java-publisher-closing");
        CountDownLatch finallyRan = new CountDownLatch(1);
        Recorder<Integer> recorder = new Recorder<>();
        Bridge.on(closing).publisher(feeds.untilCancelled(1, finallyRan::countDown)).subscribe(recorder);
        recorder.subscription.request(5);
        Bridge.on(closing).sync(c -> Unit.INSTANCE);
        closing.close();
        recorder.done.await();
        finallyRan.await();
        assertInstanceOf(CancellationException.class, recorder.error.get());

        Recorder<Integer> late = new Recorder<>();
        Bridge.on(closing).publisher(feeds.numbers(3, new AtomicInteger())).subscribe(late);
        late.subscription.request(5);
        late.done.await();
        assertInstanceOf(IllegalStateException.class, late.error.get());
    }

    @Test
    void aJavaPublisherIsAFlowForASuspendFunction() throws Exception {
        SubmissionPublisher<Integer> publisher = new SubmissionPublisher<>();
        Thread producer = new Thread(() -> {
            TestThreads.awaitCondition("a subscriber", () -> publisher.getNumberOfSubscribers() == 1);
            for (int i = 1; i <= 100; i++) publisher.submit(i);
            publisher.close(); // onComplete: the flow ends
        }, "producer");
        producer.start();
        int sum = bridge.sync(c -> feeds.sum(Bridge.flow(publisher), c));
        producer.join();
        assertEquals(5050, sum);
    }

    @Test
    void aBadRequestEndsTheSubscriptionWithAnErrorAndANullSubscriberIsNamed() throws Exception {
        AtomicInteger emitted = new AtomicInteger();
        Recorder<Integer> recorder = new Recorder<>();
        bridge.publisher(feeds.numbers(5, emitted)).subscribe(recorder);
        recorder.subscription.request(0);
        recorder.done.await();
        IllegalArgumentException error = assertInstanceOf(IllegalArgumentException.class, recorder.error.get());
        assertEquals("request(n) needs n > 0, was 0 (Reactive Streams rule 3.9)", error.getMessage());
        assertEquals(0, emitted.get());
        NullPointerException npe = assertThrows(NullPointerException.class, () -> bridge.publisher(feeds.numbers(1, emitted)).subscribe(null));
        assertEquals("subscriber must not be null", npe.getMessage());
    }

    /** A publisher that, asked for anything, sends {@code items} at once and completes, whatever was asked. */
    private static Flow.Publisher<Integer> sending(Integer... items) {
        return subscriber -> subscriber.onSubscribe(new Flow.Subscription() {
            private boolean sent;

            @Override public void request(long n) {
                if (sent) return;
                sent = true;
                for (Integer item : items) subscriber.onNext(item);
                subscriber.onComplete();
            }

            @Override public void cancel() {}
        });
    }

    @Test
    void aPublisherThatSendsNullFailsTheFlowInsteadOfEndingItSilently() {
        NullPointerException npe = assertThrows(NullPointerException.class,
                () -> bridge.sync(c -> feeds.sum(Bridge.flow(sending(1, null, 3)), c)));
        assertTrue(npe.getMessage().contains("sent null, which Reactive Streams forbid (rule 2.13)"), npe.getMessage());
    }

    @Test
    void aPublisherThatIgnoresDemandIsNamed() {
        Integer[] many = new Integer[200];
        Arrays.fill(many, 1);
        IllegalStateException error = assertThrows(IllegalStateException.class,
                () -> bridge.sync(c -> feeds.sum(Bridge.flow(sending(many)), c)));
        assertTrue(error.getMessage().contains("sent more elements than were requested (Reactive Streams rule 1.1)"),
                error.getMessage());
    }

    @Test
    void aPublisherThatNeverSubscribesTimesOutCleanly() {
        Flow.Publisher<Integer> silent = subscriber -> { };
        assertThrows(TimeoutException.class,
                () -> bridge.sync(Duration.ofMillis(100), c -> feeds.sum(Bridge.flow(silent), c)));
    }
}
