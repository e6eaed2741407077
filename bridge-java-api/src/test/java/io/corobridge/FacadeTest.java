package io.corobridge;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.corobridge.core.RunOn;
import io.corobridge.core.RunSyncLoop;
import io.corobridge.fixtures.Repository;
import java.io.IOException;
import java.lang.reflect.UndeclaredThrowableException;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/** Java interfaces over a Kotlin object with suspend methods: {@link LoopBridge#facade}. */
class FacadeTest {
    @RegisterExtension
    final TestLoops loops = new TestLoops();

    private final RunSyncLoop loop = loops.create("java-facade");
    private final LoopBridge bridge = Bridge.on(loop);
    private final Repository repository = new Repository();

    /** The Java face of {@link Repository}, blocking and asynchronous. */
    public interface Items {
        String load(String id);

        String load(int id);

        CompletableFuture<String> loadAsync(String id);

        CompletionStage<String> loadAsync(int id);

        int count();

        void save(String item);

        String read(String path) throws IOException;

        String explode();

        default String loadTwice(String id) {
            return load(id) + " & " + load(id);
        }
    }

    /** Declares no checked exception for a method that throws one. */
    public interface Undeclared {
        String read(String path);
    }

    /** Everything that can be wrong, once each, next to one method that is right. */
    public interface Broken {
        String missing();

        String archive(String id);

        String notSuspend(String id);

        Integer load(String id);

        String load(double id);

        String pick(String value);

        CompletableFuture<Integer> countAsync();
    }

    @Test
    void blockingAndAsyncMethodsCallTheSuspendFunctionsOnTheLoop() throws Exception {
        Items items = bridge.facade(Items.class, repository);
        assertEquals("item-a on corobridge-loop-java-facade", items.load("a"));
        assertEquals("item-#7", items.load(7));
        assertEquals("item-b on corobridge-loop-java-facade", items.loadAsync("b").get(10, TimeUnit.SECONDS));
        assertEquals("item-#8", items.loadAsync(8).toCompletableFuture().get(10, TimeUnit.SECONDS));
        items.save("x");
        items.save("y");
        assertEquals(List.of("x", "y"), repository.getSaved());
        assertEquals(2, items.count());
        assertEquals("item-c on corobridge-loop-java-facade & item-c on corobridge-loop-java-facade", items.loadTwice("c"));
    }

    @Test
    void onTheCallersThreadBlockingMethodsRunThereAndFuturesStillOnTheLoop() throws Exception {
        Items items = bridge.facade(Items.class, repository, RunOn.CALLER_THREAD);
        assertEquals("item-a on " + Thread.currentThread().getName(), items.load("a"));
        assertEquals("item-b on corobridge-loop-java-facade", items.loadAsync("b").get(10, TimeUnit.SECONDS));
        IOException declared = assertThrows(IOException.class, () -> items.read("/etc/nothing"));
        assertEquals("no such file: /etc/nothing", declared.getMessage());
        assertEquals("item-c on corobridge-loop-java-facade",
                bridge.facade(Items.class, repository, RunOn.LOOP).load("c"));
        String fresh = bridge.facade(Items.class, repository, RunOn.NEW_THREAD).load("d");
        assertTrue(fresh.startsWith("item-d on corobridge-loop-java-facade-call-"), fresh);
        NullPointerException nullRunOn = assertThrows(NullPointerException.class,
                () -> bridge.facade(Items.class, repository, null));
        assertEquals("runOn must not be null", nullRunOn.getMessage());
    }

    @Test
    void exceptionsPassUnchangedOrWrappedWhenUndeclared() {
        Items items = bridge.facade(Items.class, repository);
        IOException declared = assertThrows(IOException.class, () -> items.read("/etc/nothing"));
        assertEquals("no such file: /etc/nothing", declared.getMessage());
        IllegalStateException unchecked = assertThrows(IllegalStateException.class, items::explode);
        assertEquals("boom", unchecked.getMessage());
        Undeclared undeclared = bridge.facade(Undeclared.class, repository);
        UndeclaredThrowableException wrapped = assertThrows(UndeclaredThrowableException.class, () -> undeclared.read("/x"));
        assertInstanceOf(IOException.class, wrapped.getCause());
        CompletableFuture<String> failing = bridge.facade(Broken2.class, repository).explodeAsync();
        java.util.concurrent.ExecutionException async = assertThrows(java.util.concurrent.ExecutionException.class,
                () -> failing.get(10, TimeUnit.SECONDS));
        assertInstanceOf(IllegalStateException.class, async.getCause());
    }

    @Test
    void everyMismatchIsReportedAtOnceWhenTheFacadeIsMade() {
        IllegalArgumentException thrown = assertThrows(IllegalArgumentException.class,
                () -> bridge.facade(Broken.class, repository));
        String message = thrown.getMessage();
        assertTrue(message.contains("6 method(s) do not match"), message);
        assertTrue(message.contains("String missing(): Repository has no suspend function missing (if it is an extension "
                + "function, a static method of some ...Kt class, a facade cannot call it"), message);
        assertTrue(message.contains("String archive(String): Repository has no suspend function archive; archive is an "
                + "extension function (static in io.corobridge.fixtures.RepositoryKt, taking the Repository as its first "
                + "argument), which a facade cannot call: give a thin Kotlin class a member suspend fun archive"), message);
        assertTrue(message.contains("String notSuspend(String): Repository.notSuspend is not a suspend function"), message);
        assertTrue(message.contains("Integer load(String): returns Integer, but Repository.load returns String"), message);
        assertTrue(message.contains("String load(double): no overload of Repository.load accepts (double)"), message);
        assertTrue(message.contains("String pick(String): ambiguous: 2 overloads of Repository.pick"), message);
        assertFalse(message.contains("countAsync"), "a method that matches is not listed: " + message);
    }

    @Test
    void objectMethodsAndBadInput() {
        Items items = bridge.facade(Items.class, repository);
        Items other = Bridge.on(loop).facade(Items.class, repository);
        assertEquals(items, items);
        assertNotEquals(items, other);
        assertEquals(System.identityHashCode(items), items.hashCode());
        assertTrue(items.toString().startsWith("Items facade over "), items.toString());
        IllegalArgumentException notInterface = assertThrows(IllegalArgumentException.class,
                () -> bridge.facade(String.class, repository));
        assertTrue(notInterface.getMessage().contains("java.lang.String"), notInterface.getMessage());
        NullPointerException nullInterface = assertThrows(NullPointerException.class, () -> bridge.facade(null, repository));
        assertTrue(nullInterface.getMessage().contains("facadeInterface"), nullInterface.getMessage());
        assertThrows(NullPointerException.class, () -> bridge.facade(Items.class, null));
    }

    /** An asynchronous method whose suspend function fails. */
    public interface Broken2 {
        CompletableFuture<String> explodeAsync();
    }
}
