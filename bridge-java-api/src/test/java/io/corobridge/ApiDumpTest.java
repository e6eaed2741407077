package io.corobridge;

import static org.junit.jupiter.api.Assertions.assertEquals;

import io.corobridge.build.ApiDump;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;

class ApiDumpTest {
    @Test
    void publicApiMatchesTheCommittedDump() {
        String message = ApiDump.check(
                Path.of("target/classes"), Path.of("api/bridge-java-api.api"), Bridge.class.getClassLoader());
        assertEquals("", message);
    }
}
