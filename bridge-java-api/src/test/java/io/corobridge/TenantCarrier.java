package io.corobridge;

import io.corobridge.core.ContextCarrier;
import org.jspecify.annotations.Nullable;

/**
 * A context carrier written in Java and found by the service loader (listed in this module's test
 * resources, {@code META-INF/services/io.corobridge.core.ContextCarrier}): carries {@link #TENANT}.
 */
public final class TenantCarrier implements ContextCarrier<@Nullable String> {
    /** The tenant of the request this thread serves. */
    public static final ThreadLocal<@Nullable String> TENANT = new ThreadLocal<>();

    @Override
    public @Nullable String capture() {
        return TENANT.get();
    }

    @Override
    public @Nullable Object install(@Nullable String value) {
        String previous = TENANT.get();
        put(value);
        return previous;
    }

    @Override
    public void restore(@Nullable Object token) {
        put((String) token);
    }

    private static void put(@Nullable String value) {
        if (value == null) {
            TENANT.remove();
        } else {
            TENANT.set(value);
        }
    }
}
