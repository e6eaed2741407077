package io.corobridge.core

import io.corobridge.core.internal.DefaultSettings
import java.net.URL
import java.net.URLClassLoader
import java.time.Duration
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertNull
import org.junit.jupiter.api.Assertions.assertSame
import org.junit.jupiter.api.Assertions.assertThrows
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test

/** The default loop's settings from system properties and environment variables (docs/settings.md). */
class DefaultSettingsTest {
    private fun read(properties: Map<String, String> = emptyMap(), environment: Map<String, String> = emptyMap()) =
        DefaultSettings.read(properties::get, environment::get)

    @Test
    fun `every setting is read from its property, or else from its environment variable`() {
        val settings = read(
            properties = mapOf(
                "corobridge.workerLimit" to "8",
                "corobridge.stallThreshold" to "250ms",
                "corobridge.reentryPolicy" to "fail",
                "corobridge.limits" to "db=5, api=10,off=0",
            ),
            environment = mapOf(
                "COROBRIDGE_WORKER_LIMIT" to "99", // the property wins
                "COROBRIDGE_WAIT_STRATEGY" to "PARK",
                "COROBRIDGE_CLOSE_GRACE" to "PT30S",
            ),
        )
        assertEquals(8, settings.workerLimit)
        assertEquals(Duration.ofMillis(250), settings.stallThreshold)
        assertEquals(ReentryPolicy.FAIL, settings.reentryPolicy)
        assertSame(WaitStrategy.PARK, settings.waitStrategy)
        assertEquals(Duration.ofSeconds(30), settings.closeGrace)
        assertEquals(mapOf("db" to 5, "api" to 10, "off" to 0), settings.limits)
        assertEquals(Duration.ZERO, read(environment = mapOf("COROBRIDGE_STALL_THRESHOLD" to "off")).stallThreshold)
        val none = read()
        assertNull(none.workerLimit)
        assertNull(none.closeGrace)
        assertEquals(emptyMap<String, Int>(), none.limits)
    }

    @Test
    fun `a shared limit store no provider takes is refused naming the setting, with its password hidden`() {
        val settings = read(environment = mapOf("COROBRIDGE_LIMITS_STORE" to "jdbc:postgresql://db/app?user=app&password=secret"))
        assertEquals("environment variable COROBRIDGE_LIMITS_STORE", settings.limitsStore?.first)
        RunSyncLoop.create("settings-store").use { loop ->
            // corobridge-kotlin alone has no provider: corobridge-limits-postgres brings the one for PostgreSQL.
            val refused = assertThrows(IllegalArgumentException::class.java) { settings.applyTo(loop) }
            assertTrue(refused.message!!.startsWith("environment variable COROBRIDGE_LIMITS_STORE must be the URL of a shared limit store"), refused.message)
            assertTrue(refused.message!!.contains("password=***") && !refused.message!!.contains("secret"), refused.message)
        }
        val empty = assertThrows(IllegalArgumentException::class.java) { read(properties = mapOf("corobridge.limitsStore" to " ")) }
        assertEquals("system property corobridge.limitsStore must be the URL of a shared limit store, was empty", empty.message)
    }

    @Test
    fun `a bad value is refused naming the property or variable and the value`() {
        val cases = listOf(
            "corobridge.workerLimit" to "0",
            "corobridge.workerLimit" to "many",
            "corobridge.stallThreshold" to "-1s",
            "corobridge.stallThreshold" to "100",
            "corobridge.reentryPolicy" to "sometimes",
            "corobridge.waitStrategy" to "SPIN",
            "corobridge.closeGrace" to "PTxS",
            "corobridge.limits" to "db",
            "corobridge.limits" to "db=x",
            "corobridge.limits" to "=5",
            "corobridge.limits" to "db=-1",
            "corobridge.limits" to "db=1,db=2",
        )
        for ((property, value) in cases) {
            val thrown = assertThrows(IllegalArgumentException::class.java) { read(properties = mapOf(property to value)) }
            assertTrue(thrown.message!!.startsWith("system property $property must be"), thrown.message)
            assertTrue(thrown.message!!.endsWith("was \"$value\""), thrown.message)
        }
        val fromEnvironment = assertThrows(IllegalArgumentException::class.java) {
            read(environment = mapOf("COROBRIDGE_WORKER_LIMIT" to "lots"))
        }
        assertEquals(
            "environment variable COROBRIDGE_WORKER_LIMIT must be a whole number of at least 1, was \"lots\"",
            fromEnvironment.message,
        )
    }

    private fun location(type: Class<*>): URL = type.protectionDomain.codeSource.location

    /** Runs [check] against RunSyncLoop.default of a corobridge loaded afresh, with [properties] set meanwhile. */
    private fun withFreshDefault(properties: Map<String, String>, check: (Class<*>) -> Unit) {
        val loader = URLClassLoader(
            "settings",
            arrayOf(location(RunSyncLoop::class.java), location(KotlinVersion::class.java), location(kotlinx.coroutines.Job::class.java)),
            ClassLoader.getPlatformClassLoader(),
        )
        properties.forEach { (k, v) -> System.setProperty(k, v) }
        try {
            check(loader.loadClass("io.corobridge.core.RunSyncLoop"))
        } finally {
            properties.keys.forEach(System::clearProperty)
        }
    }

    @Test
    fun `the default loop takes its settings and limits at first use`() {
        withFreshDefault(mapOf("corobridge.workerLimit" to "3", "corobridge.limits" to "db=2", "corobridge.reentryPolicy" to "FAIL")) { type ->
            val default = type.getMethod("getDefault").invoke(null)
            assertEquals(3, type.getMethod("getWorkerLimit").invoke(default))
            assertEquals("FAIL", type.getMethod("getReentryPolicy").invoke(default).toString())
            val limits = type.classLoader.loadClass("io.corobridge.core.ConcurrencyLimitsKt")
                .getMethod("getLimits", type).invoke(null, default)
            assertEquals("ConcurrencyLimits[db]", limits.toString())
            // Closed as the shutdown hook would, so no thread of this copy outlives the test.
            val closing = type.getDeclaredMethod("getClosing\$corobridge_kotlin").invoke(default)
            closing.javaClass.getMethod("shutdown", Long::class.javaPrimitiveType).invoke(closing, 0L)
        }
    }

    @Test
    fun `a bad setting fails every use of the default loop, naming it`() {
        withFreshDefault(mapOf("corobridge.waitStrategy" to "SPIN")) { type ->
            repeat(2) {
                val thrown = assertThrows(java.lang.reflect.InvocationTargetException::class.java) {
                    type.getMethod("getDefault").invoke(null)
                }.targetException
                assertEquals(IllegalStateException::class.java.name, thrown.javaClass.name)
                assertTrue(
                    thrown.message!!.contains("system property corobridge.waitStrategy must be ADAPTIVE or PARK, was \"SPIN\""),
                    thrown.message,
                )
            }
        }
    }
}
