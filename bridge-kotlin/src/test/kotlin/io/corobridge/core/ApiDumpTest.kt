package io.corobridge.core

import io.corobridge.build.ApiDump
import java.nio.file.Path
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Test

class ApiDumpTest {
    @Test
    fun `public API matches the committed dump`() {
        val message = ApiDump.check(
            Path.of("target/classes"),
            Path.of("api/bridge-kotlin.api"),
            RunSyncLoop::class.java.classLoader,
        )
        assertEquals("", message)
    }
}
