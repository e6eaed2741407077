package io.corobridge;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.util.Arrays;
import java.util.Set;
import java.util.TreeSet;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;

/** {@link Bridge} (on the default loop) and {@link LoopBridge} (on one loop) offer the same operations. */
class BridgeFacesTest {
    @Test
    void everyOperationOfOneFaceIsOnTheOther() {
        Set<String> statics = signatures(Bridge.class, true);
        Set<String> instance = signatures(LoopBridge.class, false);
        statics.remove("on(RunSyncLoop)"); // how a LoopBridge is made
        statics.remove("flow(Publisher)"); // needs no loop: the flow is collected wherever it is collected
        instance.remove("toString()");
        Set<String> onlyStatic = new TreeSet<>(statics);
        onlyStatic.removeAll(instance);
        Set<String> onlyInstance = new TreeSet<>(instance);
        onlyInstance.removeAll(statics);
        assertEquals(Set.of(), onlyStatic, "on Bridge but not on LoopBridge");
        assertEquals(Set.of(), onlyInstance, "on LoopBridge but not on Bridge");
    }

    private static Set<String> signatures(Class<?> type, boolean statics) {
        return Arrays.stream(type.getDeclaredMethods())
                .filter(m -> Modifier.isPublic(m.getModifiers()) && Modifier.isStatic(m.getModifiers()) == statics)
                .map(BridgeFacesTest::signature)
                .collect(Collectors.toCollection(TreeSet::new));
    }

    private static String signature(Method m) {
        return m.getName() + Arrays.stream(m.getParameterTypes()).map(Class::getSimpleName)
                .collect(Collectors.joining(",", "(", ")"));
    }
}
