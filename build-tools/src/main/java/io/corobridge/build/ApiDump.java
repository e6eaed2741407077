package io.corobridge.build;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.reflect.Constructor;
import java.lang.reflect.Field;
import java.lang.reflect.Member;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Collectors;
import java.util.stream.Stream;

/**
 * Writes and checks the public-API dump of a module: one line per public or protected class, constructor,
 * method and field of the compiled classes, sorted, in the JVM's view (what Java callers and binary
 * compatibility see).
 *
 * <p>Left out: classes in a package named {@code internal}, classes that are not public, bridge methods,
 * synthetic constructors and fields, and members whose name holds {@code $} (Kotlin's mangled {@code internal} members and compiler
 * accessors). A Kotlin {@code internal} member that is not mangled (an internal constructor) does show up,
 * which is the point of a dump that a person reviews.
 *
 * <p>Regenerate a module's dump with {@code -Dcorobridge.api.update=true} (see {@code docs/contributing.md}).
 */
public final class ApiDump {
    /** The system property that makes {@link #check} rewrite the dump instead of comparing. */
    public static final String UPDATE_PROPERTY = "corobridge.api.update";

    private ApiDump() {}

    /**
     * Compares the public API of the classes under {@code classesDir} with the dump file, or rewrites the
     * dump when {@link #UPDATE_PROPERTY} is {@code true}.
     *
     * @return an empty string when they agree (or the dump was rewritten), else a message with the lines
     *     that differ and the command that regenerates the dump
     */
    public static String check(Path classesDir, Path dumpFile, ClassLoader loader) {
        String actual = dump(classesDir, loader);
        if (Boolean.getBoolean(UPDATE_PROPERTY)) {
            write(dumpFile, actual);
            return "";
        }
        String expected;
        try {
            expected = Files.exists(dumpFile) ? Files.readString(dumpFile, StandardCharsets.UTF_8) : "";
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        if (expected.equals(actual)) {
            return "";
        }
        List<String> expectedLines = expected.lines().collect(Collectors.toList());
        List<String> actualLines = actual.lines().collect(Collectors.toList());
        StringBuilder message = new StringBuilder("The public API differs from ")
                .append(dumpFile)
                .append(".\nIf the change is deliberate, regenerate the dump with\n")
                .append("  mvn -q clean test -Dcorobridge.api.update=true -Dtest=ApiDumpTest -Dsurefire.failIfNoSpecifiedTests=false\n")
                .append("(clean first: class files of deleted code stay in target/classes and would enter the dump)\n")
                .append("and review its diff with the change.\n");
        for (String line : actualLines) {
            if (!expectedLines.contains(line)) {
                message.append("+ ").append(line).append('\n');
            }
        }
        for (String line : expectedLines) {
            if (!actualLines.contains(line)) {
                message.append("- ").append(line).append('\n');
            }
        }
        return message.toString();
    }

    /** Returns the dump of the public API of the classes under {@code classesDir}, loaded through {@code loader}. */
    public static String dump(Path classesDir, ClassLoader loader) {
        List<String> lines = new ArrayList<>();
        for (String className : classNames(classesDir)) {
            Class<?> type;
            try {
                type = Class.forName(className, false, loader);
            } catch (ClassNotFoundException e) {
                throw new IllegalStateException("cannot load " + className + " from " + classesDir, e);
            }
            if (isPublished(type)) {
                describe(type, lines);
            }
        }
        lines.sort(null);
        return lines.stream().collect(Collectors.joining("\n", "", "\n"));
    }

    private static List<String> classNames(Path classesDir) {
        if (!Files.isDirectory(classesDir)) {
            throw new IllegalArgumentException("classesDir is not a directory: " + classesDir);
        }
        try (Stream<Path> files = Files.walk(classesDir)) {
            return files.map(classesDir::relativize)
                    .map(Path::toString)
                    .filter(name -> name.endsWith(".class") && !name.endsWith("module-info.class")
                            && !name.endsWith("package-info.class"))
                    .map(name -> name.substring(0, name.length() - ".class".length())
                            .replace('/', '.').replace('\\', '.'))
                    .sorted()
                    .collect(Collectors.toList());
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static boolean isPublished(Class<?> type) {
        if (type.isSynthetic() || type.isAnonymousClass() || type.isLocalClass()) {
            return false;
        }
        for (String part : type.getPackageName().split("\\.")) {
            if (part.equals("internal")) {
                return false;
            }
        }
        for (Class<?> t = type; t != null; t = t.getDeclaringClass()) {
            if (!Modifier.isPublic(t.getModifiers()) && !(t != type && Modifier.isProtected(t.getModifiers()))) {
                return false;
            }
        }
        return true;
    }

    private static void describe(Class<?> type, List<String> lines) {
        String owner = type.getName();
        StringBuilder header = new StringBuilder(owner).append(" : ")
                .append(Modifier.toString(type.getModifiers() & ~Modifier.STATIC & ~Modifier.STRICT))
                .append(type.isInterface() ? "" : " class");
        if (type.getGenericSuperclass() != null && type.getSuperclass() != Object.class) {
            header.append(" extends ").append(type.getGenericSuperclass().getTypeName());
        }
        for (var iface : type.getGenericInterfaces()) {
            header.append(" implements ").append(iface.getTypeName());
        }
        lines.add(header.toString().replace("  ", " "));
        for (Constructor<?> c : type.getDeclaredConstructors()) {
            if (isVisible(c) && !c.isSynthetic()) {
                lines.add(owner + " : " + c.toGenericString());
            }
        }
        for (Method m : type.getDeclaredMethods()) {
            if (isVisible(m) && !m.isBridge() && !m.getName().contains("$")) {
                // Kotlin's @JvmSynthetic hides a method from Java but not from Kotlin: it is still API.
                lines.add(owner + " : " + (m.isSynthetic() ? "synthetic " : "") + m.toGenericString());
            }
        }
        for (Field f : type.getDeclaredFields()) {
            if (isVisible(f) && !f.isSynthetic() && !f.getName().contains("$")) {
                lines.add(owner + " : " + f.toGenericString());
            }
        }
    }

    private static boolean isVisible(Member member) {
        int modifiers = member.getModifiers();
        return Modifier.isPublic(modifiers) || Modifier.isProtected(modifiers);
    }

    private static void write(Path dumpFile, String text) {
        try {
            Path parent = dumpFile.toAbsolutePath().getParent();
            if (parent != null) {
                Files.createDirectories(parent);
            }
            Files.writeString(dumpFile, text, StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
