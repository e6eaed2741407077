package io.corobridge.examples;

import io.corobridge.Bridge;
import io.corobridge.core.ContextCarrier;
import io.corobridge.core.ContextPropagation;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import kotlin.coroutines.EmptyCoroutineContext;
import org.slf4j.MDC;

/**
 * A request ID in the SLF4J MDC, set by the Java thread that serves each request, seen by Kotlin suspend code
 * on the shared loop thread and by blocking code on a worker thread, and gone from those threads afterwards.
 *
 * <p>Run it: {@code mvn -q -pl examples -am package -DskipTests exec:java
 * -Dexec.mainClass=io.corobridge.examples.ContextTour}
 */
public final class ContextTour {
    private ContextTour() {}

    public static void main(String[] args) throws Exception {
        ContextCarrier<?> mdc = ContextCarrier.slf4jMdc();
        if (mdc == null) {
            throw new IllegalStateException("SLF4J is not on the class path");
        }
        ContextPropagation.register(mdc);
        try {
            AuditTrail audit = new AuditTrail();
            Map<String, String> seen = new ConcurrentHashMap<>();
            List<Thread> requests = new ArrayList<>();
            for (String id : List.of("r-1", "r-2", "r-3")) {
                Thread request = new Thread(() -> {
                    MDC.put("requestId", id);
                    try {
                        seen.put(id, Bridge.<String>sync(c -> audit.trace(c))); // three requests share one loop thread
                    } finally {
                        MDC.clear();
                    }
                }, "request-" + id);
                request.start();
                requests.add(request);
            }
            for (Thread request : requests) {
                request.join();
            }
            new TreeMap<>(seen).forEach((id, line) -> System.out.println("request " + id + ": " + line));
            System.out.println("the loop thread's own MDC afterwards: " + loopThreadMdc());
        } finally {
            ContextPropagation.unregister(mdc);
        }
    }

    /** The MDC of the loop thread itself, read in a task that carries no context. */
    private static Object loopThreadMdc() {
        CompletableFuture<Object> seen = new CompletableFuture<>();
        Bridge.loop().getDispatcher().dispatch(
                EmptyCoroutineContext.INSTANCE, () -> seen.complete(String.valueOf(MDC.getCopyOfContextMap())));
        return seen.join();
    }
}
