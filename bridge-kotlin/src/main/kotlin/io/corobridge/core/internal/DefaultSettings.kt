package io.corobridge.core.internal

import io.corobridge.core.ReentryPolicy
import io.corobridge.core.RunSyncLoop
import io.corobridge.core.SharedLimitStore
import io.corobridge.core.SharedLimitStoreProvider
import io.corobridge.core.WaitStrategy
import io.corobridge.core.limits
import io.corobridge.core.onShutdown
import io.corobridge.core.useSharedLimits
import java.time.Duration
import java.time.format.DateTimeParseException

/*
 * The default loop's settings from outside the code: for each setting a system property `corobridge.<name>`, or
 * else an environment variable `COROBRIDGE_<NAME>` (the name in upper snake case), read once, when the default
 * loop is first used. A value that cannot be used fails that first use (and every later one) with an error that
 * names the property or variable and the value. docs/settings.md lists them; keep the two in step.
 */
internal class DefaultSettings private constructor(
    val workerLimit: Int?,
    /** Set: a threshold; `Duration.ZERO`: the watchdog switched off. */
    val stallThreshold: Duration?,
    val reentryPolicy: ReentryPolicy?,
    val waitStrategy: WaitStrategy?,
    val closeGrace: Duration?,
    /** Tag to slots, in the order given. */
    val limits: Map<String, Int>,
    /** Where the limits are kept when shared by JVMs: where the setting came from, and the store's URL. */
    val limitsStore: Pair<String, String>?,
) {
    /** Applies the settings given to [loop] (the default loop, before anyone else uses it). */
    fun applyTo(loop: RunSyncLoop) {
        workerLimit?.let { loop.workerLimit = it }
        stallThreshold?.let { loop.stallThreshold = if (it.isZero) null else it }
        reentryPolicy?.let { loop.reentryPolicy = it }
        waitStrategy?.let { loop.waitStrategy = it }
        val store = limitsStore?.let { (described, url) -> shareLimits(loop, described, url) }
        try {
            for ((tag, slots) in limits) loop.limits.create(tag, slots)
        } catch (failure: Throwable) {
            store?.close() // the loop will not be used: its store must not keep its threads
            throw failure
        }
    }

    /** [text] with the passwords of URLs in it hidden: `password=...` and `user:password@`. */
    private fun redact(text: String): String =
        text.replace(Regex("(?i)(password=)[^&;\\s\"]*"), "$1***").replace(Regex("([^/:@\\s\"]+:)[^@/\\s\"]+@"), "$1***@")

    /** Keeps [loop]'s limits in the store at [url], opened by a provider on the class path, closed with the loop. */
    private fun shareLimits(loop: RunSyncLoop, described: String, url: String): SharedLimitStore {
        val shown = redact(url)
        val providers = java.util.ServiceLoader.load(SharedLimitStoreProvider::class.java, SharedLimitStoreProvider::class.java.classLoader)
        val store = try {
            providers.firstNotNullOfOrNull { it.open(url) }
        } catch (failure: Exception) {
            // Not the failure as cause: drivers repeat the URL, password and all, in their messages.
            throw IllegalStateException(redact("$described: the shared limit store at \"$shown\" could not be opened: $failure"))
        } ?: throw IllegalArgumentException(
            "$described must be the URL of a shared limit store that a provider on the class path accepts " +
                "(jdbc:postgresql:..., with corobridge-limits-postgres), was \"$shown\""
        )
        loop.useSharedLimits(store)
        loop.onShutdown(Runnable { store.close() })
        return store
    }

    internal companion object {
        /** The settings given: for each, the [property] of its name, or else the [environment] variable. */
        fun read(property: (String) -> String?, environment: (String) -> String?): DefaultSettings {
            /** The setting's value, trimmed, and where it came from, as an error names it. */
            fun value(name: String): Pair<String, String>? {
                val key = "corobridge.$name"
                property(key)?.let { return "system property $key" to it.trim() }
                val variable = "COROBRIDGE_" + name.replace(Regex("([a-z])([A-Z])"), "$1_$2").uppercase()
                return environment(variable)?.let { "environment variable $variable" to it.trim() }
            }
            fun <T> parse(name: String, what: String, convert: (String) -> T?): T? {
                val (described, text) = value(name) ?: return null
                return try {
                    convert(text)
                } catch (_: IllegalArgumentException) {
                    null
                } catch (_: DateTimeParseException) {
                    null
                } ?: throw IllegalArgumentException("$described must be $what, was \"$text\"")
            }
            return DefaultSettings(
                workerLimit = parse("workerLimit", "a whole number of at least 1") { it.toInt().takeIf { n -> n >= 1 } },
                stallThreshold = parse("stallThreshold", "a positive duration (PT0.2S, 200ms, 2s) or off") {
                    if (it.equals("off", ignoreCase = true)) Duration.ZERO else duration(it)?.takeIf { d -> !d.isZero }
                },
                reentryPolicy = parse("reentryPolicy", "NEW_THREAD or FAIL") { text ->
                    ReentryPolicy.values().firstOrNull { it.name.equals(text, ignoreCase = true) }
                },
                waitStrategy = parse("waitStrategy", "ADAPTIVE or PARK") {
                    when (it.uppercase()) {
                        "ADAPTIVE" -> WaitStrategy.ADAPTIVE
                        "PARK" -> WaitStrategy.PARK
                        else -> null
                    }
                },
                closeGrace = parse("closeGrace", "a duration of zero or more (PT10S, 500ms, 10s)") { duration(it) },
                limits = parse("limits", "tag=slots pairs separated by commas (db=5,api=10), slots 0 or more") {
                    limits(it)
                } ?: emptyMap(),
                limitsStore = value("limitsStore")?.also { (described, url) ->
                    require(url.isNotEmpty()) { "$described must be the URL of a shared limit store, was empty" }
                },
            )
        }

        /** The settings of this JVM: its system properties, else its environment. */
        fun fromSystem(): DefaultSettings = read(System::getProperty, System::getenv)

        /** `PT0.5S`, `500ms` or `2s`; null if it is none of these or negative. */
        private fun duration(text: String): Duration? {
            val parsed = when {
                text.startsWith("PT", ignoreCase = true) -> Duration.parse(text)
                text.endsWith("ms") -> Duration.ofMillis(text.removeSuffix("ms").trim().toLong())
                text.endsWith("s") -> Duration.ofSeconds(text.removeSuffix("s").trim().toLong())
                else -> return null
            }
            return parsed.takeIf { !it.isNegative }
        }

        private fun limits(text: String): Map<String, Int>? {
            val result = LinkedHashMap<String, Int>()
            for (pair in text.split(',')) {
                val parts = pair.split('=')
                if (parts.size != 2) return null
                val tag = parts[0].trim()
                val slots = parts[1].trim().toIntOrNull() ?: return null
                if (tag.isEmpty() || slots < 0 || result.put(tag, slots) != null) return null
            }
            return result
        }
    }
}
