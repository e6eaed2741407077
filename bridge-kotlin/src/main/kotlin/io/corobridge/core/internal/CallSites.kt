package io.corobridge.core.internal

import io.corobridge.core.RunSyncLoop
import java.net.URL
import java.net.URLClassLoader
import java.util.concurrent.ConcurrentHashMap

/**
 * Finds the user's frame that called into corobridge, for warnings that are given once per call site.
 *
 * Library frames are recognised by where their class was loaded from, not by package name (so a user's class
 * in an `io.corobridge` package, our own tests among them, still counts as a call site): every corobridge
 * module ships the resource [MARKER], and a jar or class folder that holds it is library code. So the core
 * needs to know none of the modules built on it. JDK and Kotlin runtime frames are skipped too.
 */
internal object CallSites {
    /** The resource that marks a jar or class folder as corobridge's own. */
    private const val MARKER = "META-INF/io.corobridge.library"

    private val warned: MutableSet<String> = ConcurrentHashMap.newKeySet()

    /** Whether each code location seen so far holds [MARKER]. */
    private val libraryLocations = ConcurrentHashMap<String, Boolean>()

    private val runtimePrefixes = listOf("java.", "jdk.", "sun.", "kotlin.", "kotlinx.")

    /** Describes the first caller frame outside corobridge and the runtime, or "unknown call site". */
    fun current(): String {
        val walker = StackWalker.getInstance(StackWalker.Option.RETAIN_CLASS_REFERENCE)
        val frame = walker.walk { frames ->
            frames.filter { !isLibraryFrame(it.declaringClass) }.findFirst().orElse(null)
        }
        return frame?.toStackTraceElement()?.toString() ?: "unknown call site"
    }

    /**
     * For a function that calls into corobridge on its caller's behalf (a dual entry point built on
     * asyncDispatch): that function's frame, as `Class.method`, and its caller's frame, the call site a warning
     * should name. Kotlin's `name${'$'}default` bridges for default arguments are skipped.
     */
    fun entryPointAndCaller(): Pair<String, String> {
        val walker = StackWalker.getInstance(StackWalker.Option.RETAIN_CLASS_REFERENCE)
        return walker.walk { frames ->
            val outside = frames.filter { !isLibraryFrame(it.declaringClass) }.iterator()
            if (!outside.hasNext()) return@walk "unknown function" to "unknown call site"
            val entry = outside.next()
            var caller: StackWalker.StackFrame? = null
            while (outside.hasNext()) {
                val frame = outside.next()
                val bridge = frame.declaringClass == entry.declaringClass &&
                    frame.methodName.startsWith(entry.methodName + "${'$'}")
                if (!bridge) {
                    caller = frame
                    break
                }
            }
            "${entry.declaringClass.simpleName}.${entry.methodName}" to
                (caller?.toStackTraceElement()?.toString() ?: "unknown call site")
        }
    }

    /**
     * True if [frame] belongs to corobridge or the runtime (JDK, Kotlin, kotlinx). A class that cannot be
     * found from here is the user's (another class loader's): false.
     */
    fun isLibraryOrRuntime(frame: StackTraceElement): Boolean {
        if (runtimePrefixes.any { frame.className.startsWith(it) }) return true
        val type = try {
            Class.forName(frame.className, false, RunSyncLoop::class.java.classLoader)
        } catch (_: ClassNotFoundException) {
            return false
        } catch (_: LinkageError) {
            return false
        }
        return isLibraryFrame(type)
    }

    /** True the first time [key] is seen, so a warning is given once. */
    fun firstTime(key: String): Boolean = warned.add(key)

    private fun isLibraryFrame(type: Class<*>): Boolean {
        val name = type.name
        if (runtimePrefixes.any { name.startsWith(it) }) return true
        val where: URL = type.protectionDomain?.codeSource?.location ?: return false
        return libraryLocations.computeIfAbsent(where.toString()) { hasMarker(where) }
    }

    /** Looks in [location] alone (no parent loader) for [MARKER]. */
    private fun hasMarker(location: URL): Boolean = try {
        URLClassLoader(arrayOf(location), null).use { it.findResource(MARKER) != null }
    } catch (_: java.io.IOException) {
        false
    } catch (_: SecurityException) {
        false
    }
}
