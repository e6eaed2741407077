package io.corobridge.examples;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/**
 * corobridge-bom has no parent (so importing it brings none of the build's own versions), so nothing keeps it in
 * step with the build but this test: its version, its Kotlin and kotlinx versions, and every published module.
 */
class BomTest {
    private static final Path ROOT = Path.of("..");

    @Test
    void theBomNamesEveryLibraryModuleAtTheBuildsVersionsOfKotlinAndKotlinx() throws Exception {
        String parent = Files.readString(ROOT.resolve("pom.xml"));
        String bom = Files.readString(ROOT.resolve("bom/pom.xml"));
        assertEquals(first(parent, "<artifactId>corobridge-parent</artifactId>\\s*<version>([^<]+)</version>"),
                first(bom, "<artifactId>corobridge-bom</artifactId>\\s*<version>([^<]+)</version>"), "version");
        assertEquals(first(parent, "<kotlin.version>([^<]+)<"), first(bom, "<kotlin.version>([^<]+)<"), "kotlin-stdlib");
        assertEquals(first(parent, "<kotlinx.coroutines.version>([^<]+)<"),
                first(bom, "<kotlinx.coroutines.version>([^<]+)<"), "kotlinx-coroutines");

        // The library modules are those with an api/ folder (their public API is checked); each is in the BOM.
        Set<String> libraries = new TreeSet<>();
        try (Stream<Path> modules = Files.list(ROOT)) {
            for (Path module : modules.filter(m -> Files.isDirectory(m.resolve("api"))).collect(Collectors.toList())) {
                String pom = Files.readString(module.resolve("pom.xml"));
                libraries.add(first(pom, "</parent>\\s*<artifactId>([^<]+)</artifactId>"));
            }
        }
        assertTrue(libraries.size() >= 5, "found the library modules: " + libraries);
        Set<String> inBom = new TreeSet<>(all(bom, "<groupId>io.corobridge</groupId>\\s*<artifactId>([^<]+)</artifactId>"));
        inBom.remove("corobridge-bom");
        assertEquals(libraries, inBom, "every published module, and only those");
    }

    private static String first(String text, String regex) {
        Matcher m = Pattern.compile(regex).matcher(text);
        assertTrue(m.find(), "no match for " + regex);
        return m.group(1);
    }

    private static List<String> all(String text, String regex) {
        Matcher m = Pattern.compile(regex).matcher(text);
        List<String> found = new java.util.ArrayList<>();
        while (m.find()) {
            found.add(m.group(1));
        }
        return found;
    }
}
