package io.corobridge.limits.postgres

import io.corobridge.core.SharedLimitStore
import io.corobridge.core.SharedLimitStoreProvider

/**
 * Opens a [PostgresLimitStore] for a `jdbc:postgresql:` URL: what the default loop's setting
 * `corobridge.limitsStore` (or `COROBRIDGE_LIMITS_STORE`) uses, found through `java.util.ServiceLoader`.
 *
 * @since 0.2
 */
public class PostgresLimitStoreProvider : SharedLimitStoreProvider {
    override fun open(url: String): SharedLimitStore? =
        if (url.startsWith("jdbc:postgresql:")) PostgresLimitStore.open(url) else null
}
