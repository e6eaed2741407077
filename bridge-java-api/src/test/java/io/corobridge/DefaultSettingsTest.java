package io.corobridge;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.corobridge.core.RunSyncLoop;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.net.URL;
import java.net.URLClassLoader;
import org.junit.jupiter.api.Test;

/** A default-loop setting that cannot be used fails every use of {@code Bridge} with the same clear error. */
class DefaultSettingsTest {
    private static URL location(Class<?> type) {
        return type.getProtectionDomain().getCodeSource().getLocation();
    }

    @Test
    void aBadSettingFailsEveryUseOfBridgeNamingIt() throws Exception {
        // A fresh copy of corobridge, whose default loop reads the property at its first use.
        try (URLClassLoader loader = new URLClassLoader("settings", new URL[] {location(Bridge.class),
                location(RunSyncLoop.class), location(kotlin.Unit.class), location(kotlinx.coroutines.Job.class)},
                ClassLoader.getPlatformClassLoader())) {
            System.setProperty("corobridge.workerLimit", "many");
            try {
                Method loop = loader.loadClass("io.corobridge.Bridge").getMethod("loop");
                Method limits = loader.loadClass("io.corobridge.Bridge").getMethod("limits");
                for (Method use : new Method[] {limits, loop, limits}) {
                    Throwable thrown = assertThrows(InvocationTargetException.class, () -> use.invoke(null))
                            .getTargetException();
                    assertEquals(IllegalStateException.class.getName(), thrown.getClass().getName(), thrown.toString());
                    assertTrue(thrown.getMessage().contains(
                            "system property corobridge.workerLimit must be a whole number of at least 1, was \"many\""),
                            thrown.getMessage());
                }
            } finally {
                System.clearProperty("corobridge.workerLimit");
            }
        }
    }
}
