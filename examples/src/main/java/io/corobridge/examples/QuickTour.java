package io.corobridge.examples;

import io.corobridge.Bridge;
import io.corobridge.core.Outcome;
import io.corobridge.core.SuspendCall;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.stream.Stream;

/**
 * The README's main job: a Java class calling a Kotlin suspend service through corobridge, blocking,
 * through a future, several calls at once, every outcome of a batch, and a flow read as a stream, printing what
 * ran on which thread.
 */
public final class QuickTour {
    private static final long LATENCY_MS = 100;

    private QuickTour() {}

    public static void main(String[] args) throws Exception {
        InventoryService inventory = new InventoryService();
        String me = Thread.currentThread().getName();

        System.out.println("1. Blocking: Bridge.sync parks thread '" + me + "' while the suspend function runs.");
        Stock apple = Bridge.sync(c -> inventory.stock("apple", LATENCY_MS, c));
        System.out.printf("   stock(apple) = %d, computed on '%s', returned to '%s'%n",
                apple.getCount(), apple.getThread(), Thread.currentThread().getName());

        System.out.println("2. Future: Bridge.async returns at once; the future completes on the loop thread.");
        // A suspend function returns Object to Java, so name the result type when chaining stages.
        CompletableFuture<String> pear = Bridge.<Stock>async(c -> inventory.stock("pear", LATENCY_MS, c))
                .thenApply(stock -> String.format("stock(pear) = %d, computed on '%s', thenApply ran on '%s'",
                        stock.getCount(), stock.getThread(), Thread.currentThread().getName()));
        System.out.println("   '" + me + "' is free while it runs; now joining...");
        System.out.println("   " + pear.join());

        System.out.println("3. Several at once: five threads each block in Bridge.sync; the calls overlap on one loop thread.");
        String[] skus = {"apple", "pear", "plum", "fig", "kiwi"};
        List<Thread> callers = new ArrayList<>();
        List<String> lines = java.util.Collections.synchronizedList(new ArrayList<>());
        long start = System.nanoTime();
        for (String sku : skus) {
            Thread caller = new Thread(() -> {
                Stock stock = Bridge.sync(c -> inventory.stock(sku, LATENCY_MS, c));
                lines.add(String.format("   %-5s = %2d  (caller '%s', ran on '%s')",
                        sku, stock.getCount(), Thread.currentThread().getName(), stock.getThread()));
            }, "caller-" + sku);
            callers.add(caller);
            caller.start();
        }
        for (Thread caller : callers) {
            caller.join();
        }
        long elapsedMs = (System.nanoTime() - start) / 1_000_000;
        lines.stream().sorted().forEach(System.out::println);
        System.out.printf("   5 calls of %d ms each took %d ms in all: they ran concurrently, not one after another.%n",
                LATENCY_MS, elapsedMs);

        System.out.println("4. Exceptions: the suspend function's checked exception reaches Java unchanged.");
        try {
            Bridge.sync(c -> inventory.stock("durian", LATENCY_MS, c));
        } catch (Exception e) {
            if (!(e instanceof IOException)) {
                throw e;
            }
            System.out.println("   caught " + e.getClass().getName() + ": " + e.getMessage());
        }
        System.out.println("5. Every outcome: Bridge.gatherSettled runs every call to its end, failures included.");
        List<SuspendCall<Stock>> lookups = new ArrayList<>();
        for (String sku : new String[] {"apple", "durian", "kiwi"}) {
            lookups.add(c -> inventory.stock(sku, LATENCY_MS, c));
        }
        for (Outcome<Stock> outcome : Bridge.gatherSettled(lookups)) {
            System.out.println("   " + (outcome.isSuccess()
                    ? "value " + outcome.getOrThrow().getSku() + " = " + outcome.getOrThrow().getCount()
                    : "failure " + outcome.exceptionOrNull()));
        }

        System.out.println("6. A Kotlin flow as a Java stream: the flow runs on the loop, the stream is read here.");
        try (Stream<Stock> shelves = Bridge.stream(inventory.everyShelf(10))) {
            shelves.filter(stock -> stock.getCount() > 10).limit(1)
                    .forEach(stock -> System.out.println("   first shelf with more than 10: " + stock.getSku()));
        }
        System.out.println("   closing the stream cancelled the flow and waited for its finally");
        System.out.println("Done. The loop thread is a daemon, closed by a JVM shutdown hook.");
    }
}
