package io.corobridge.build;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.ServiceLoader;
import java.util.Set;
import org.jetbrains.kotlin.abi.tools.AbiFilters;
import org.jetbrains.kotlin.abi.tools.AbiTools;
import org.jetbrains.kotlin.abi.tools.AbiToolsFactory;

/**
 * Writes and checks the public-API dump of a module's packaged jar, in the format of the Kotlin project's own
 * ABI tools ({@code org.jetbrains.kotlin:abi-tools}, the successor of the binary-compatibility validator that
 * kotlinx libraries use): one block per class that a user can reach, one line per member, in the JVM's view.
 *
 * <p>The tools read each class's Kotlin metadata, so Kotlin {@code internal} declarations, and the synthetic
 * members that exist only for the compiler, never appear; Java classes (which have no metadata) are dumped by
 * their Java visibility. Because the jar is checked, not the class folder, a dump is made of exactly what
 * would be published; and because each library module empties its class folder before it compiles (see the
 * parent pom), the jar never holds the class files of deleted code.
 *
 * <p>Run by each library module in its {@code verify} phase (exec-maven-plugin):
 * {@code ApiDump <jar> <dump file>}. With {@code -Dcorobridge.api.update=true} it rewrites the dump instead of
 * comparing (see {@code docs/contributing.md}).
 */
public final class ApiDump {
    /** The system property that makes {@link #check} rewrite the dump instead of comparing. */
    public static final String UPDATE_PROPERTY = "corobridge.api.update";

    private ApiDump() {}

    /**
     * Checks the jar named by {@code args[0]} against the dump file {@code args[1]}.
     *
     * @throws IllegalStateException if they differ, with the difference and the command that regenerates the dump
     */
    public static void main(String[] args) {
        if (args.length != 2) {
            throw new IllegalArgumentException("usage: ApiDump <jar> <dump file>; got " + List.of(args));
        }
        String message = check(Path.of(args[0]), Path.of(args[1]));
        if (!message.isEmpty()) {
            throw new IllegalStateException(message);
        }
    }

    /**
     * Compares the public API of {@code jar} with {@code dumpFile}, or rewrites the dump when
     * {@link #UPDATE_PROPERTY} is {@code true}.
     *
     * @return an empty string when they agree (or the dump was rewritten), else the difference as a unified
     *     diff and the command that regenerates the dump
     */
    public static String check(Path jar, Path dumpFile) {
        if (!Files.isRegularFile(jar)) {
            throw new IllegalArgumentException("jar is not a file (package the module first): " + jar);
        }
        String actual = dump(jar);
        if (Boolean.getBoolean(UPDATE_PROPERTY)) {
            write(dumpFile, actual);
            return "";
        }
        String expected = Files.exists(dumpFile) ? read(dumpFile) : "";
        if (expected.equals(actual)) {
            return "";
        }
        // The tools compare files: the actual dump goes beside the jar (and a missing dump is an empty one).
        Path actualFile = jar.resolveSibling(dumpFile.getFileName().toString());
        write(actualFile, actual);
        Path expectedFile = dumpFile;
        if (!Files.exists(dumpFile)) {
            expectedFile = jar.resolveSibling("missing-" + dumpFile.getFileName());
            write(expectedFile, "");
        }
        String diff = tools().filesDiff(expectedFile.toFile(), actualFile.toFile());
        return "The public API of " + jar.getFileName() + " differs from " + dumpFile + ".\n"
                + "If the change is deliberate, regenerate the dump with\n"
                + "  mvn -q -pl bridge-kotlin,bridge-java-api -am verify -DskipTests -Dcorobridge.api.update=true\n"
                + "and review its diff with the change (docs/contributing.md, \"The public-API dump\").\n"
                + diff;
    }

    /** Returns the dump of the public API of the classes in {@code jar}. */
    public static String dump(Path jar) {
        StringBuilder text = new StringBuilder();
        tools().printJvmDump(text, List.of(jar.toFile()), new AbiFilters(Set.of(), Set.of(), Set.of(), Set.of()));
        return text.toString();
    }

    private static AbiTools tools() {
        return ServiceLoader.load(AbiToolsFactory.class, ApiDump.class.getClassLoader())
                .findFirst()
                .orElseThrow(() -> new IllegalStateException("org.jetbrains.kotlin:abi-tools is not on the class path"))
                .get();
    }

    private static String read(Path file) {
        try {
            return Files.readString(file, StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static void write(Path file, String text) {
        try {
            Path parent = file.toAbsolutePath().getParent();
            if (parent != null) {
                Files.createDirectories(parent);
            }
            Files.writeString(file, text, StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
