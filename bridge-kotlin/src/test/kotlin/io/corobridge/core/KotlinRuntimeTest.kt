package io.corobridge.core

import java.io.File
import java.nio.file.Files
import java.nio.file.Path
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test

/**
 * A class path with an older kotlin-stdlib than corobridge needs (what Maven's nearest-wins gives a project whose
 * other dependency brings one): the first loop made warns, once, naming both versions and the fix, before any
 * NoClassDefFoundError that would name only a class of the standard library.
 */
class KotlinRuntimeTest {
    /** Run in the child JVM: make two loops (their threads never start), print what happened. */
    object Probe {
        @JvmStatic
        fun main(args: Array<String>) {
            try {
                RunSyncLoop.create("probe")
                RunSyncLoop.create("second")
                println("made")
            } catch (e: Throwable) {
                println("${e.javaClass.name}: ${e.message}")
            }
        }
    }

    @Test
    fun `an older kotlin-stdlib on the class path is named once, with the fix`() {
        val older = Path.of("target", "older-stdlib", "kotlin-stdlib-older.jar")
        assertTrue(Files.exists(older), "the build copies kotlin-stdlib 2.0.21 there (maven-dependency-plugin)")
        val classPath = System.getProperty("java.class.path").split(File.pathSeparator)
            .filterNot { Path.of(it).fileName.toString().startsWith("kotlin-stdlib") }
            .plus(older.toString())
            .joinToString(File.pathSeparator)
        val child = runChildJvm(Probe::class.java, classPath = classPath)
        val output = child.output
        assertEquals(0, child.exitCode, output)
        val warning = "corobridge needs kotlin-stdlib 2.1 or newer, and this class path has 2.0.21 (another dependency " +
            "brought it, and Maven kept the nearest version): import io.corobridge:corobridge-bom, or pin " +
            "org.jetbrains.kotlin:kotlin-stdlib, in dependencyManagement"
        assertEquals(1, output.split(warning).size - 1, "warned once, for two loops: $output")
        assertTrue(output.trim().endsWith("made"), output)
    }
}
