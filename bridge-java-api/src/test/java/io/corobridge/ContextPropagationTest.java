package io.corobridge;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.corobridge.core.ContextPropagation;
import io.corobridge.core.RunSyncLoop;
import io.corobridge.core.SuspendCall;
import io.corobridge.fixtures.UserService;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CyclicBarrier;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/** Thread-local context carried from Java callers into the loop and its workers, by a service-loaded carrier. */
class ContextPropagationTest {
    @RegisterExtension
    final TestLoops loops = new TestLoops();

    private final RunSyncLoop loop = loops.create("java-context");
    private final LoopBridge bridge = Bridge.on(loop);
    private final UserService users = new UserService();

    @AfterEach
    void cleanUp() {
        TenantCarrier.TENANT.remove();
    }

    @Test
    void theServiceLoaderFindsACarrierListedInMetaInfServices() {
        assertTrue(
                ContextPropagation.getCarriers().stream().anyMatch(TenantCarrier.class::isInstance),
                "registered: " + ContextPropagation.getCarriers());
        TenantCarrier.TENANT.set("acme");
        assertEquals("acme", bridge.sync(c -> users.callBack(TenantCarrier.TENANT::get, c)), "after suspending");
        assertEquals("acme", bridge.sync(bridge.inWorkerThread(TenantCarrier.TENANT::get)), "on a worker");
        assertEquals("acme", bridge.async(c -> users.callBack(TenantCarrier.TENANT::get, c)).join(), "async");
        TenantCarrier.TENANT.remove();
        assertNull(bridge.sync(c -> users.callBack(TenantCarrier.TENANT::get, c)), "a caller without a tenant");
    }

    @Test
    void oneHundredConcurrentJavaCallersEachSeeTheirOwnTenant() throws InterruptedException {
        int callers = 100;
        CyclicBarrier start = new CyclicBarrier(callers);
        Map<String, List<@org.jspecify.annotations.Nullable String>> seen = new ConcurrentHashMap<>();
        Map<String, Throwable> failures = new ConcurrentHashMap<>();
        List<Thread> threads = new ArrayList<>();
        for (int n = 1; n <= callers; n++) {
            String mine = "tenant-" + n;
            Thread caller = new Thread(() -> {
                try {
                    TenantCarrier.TENANT.set(mine);
                    start.await();
                    List<@org.jspecify.annotations.Nullable String> values = new ArrayList<>();
                    values.add(bridge.sync(c -> users.callBack(TenantCarrier.TENANT::get, c)));
                    values.add(bridge.sync(bridge.inWorkerThread(TenantCarrier.TENANT::get)));
                    values.addAll(bridge.gather(List.<SuspendCall<@org.jspecify.annotations.Nullable String>>of(
                            c -> users.callBack(TenantCarrier.TENANT::get, c),
                            c -> users.callBack(TenantCarrier.TENANT::get, c))));
                    seen.put(mine, values);
                } catch (Throwable e) {
                    failures.put(mine, e);
                }
            });
            caller.start();
            threads.add(caller);
        }
        for (Thread thread : threads) {
            thread.join();
        }
        assertTrue(failures.isEmpty(), "failures: " + failures);
        assertEquals(callers, seen.size());
        seen.forEach((mine, values) -> assertEquals(List.of(mine, mine, mine, mine), values, "what " + mine + " saw"));
    }
}
