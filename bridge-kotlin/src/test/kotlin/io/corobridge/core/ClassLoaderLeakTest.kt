package io.corobridge.core

import java.lang.ref.WeakReference
import java.net.URL
import java.net.URLClassLoader
import org.junit.jupiter.api.AfterEach
import org.junit.jupiter.api.Assertions.assertNull
import org.junit.jupiter.api.Test

/**
 * A container that redeploys an application must be able to unload it: once the application's loop is
 * closed, no thread corobridge keeps running (the watchdog, another application's loop) may hold the
 * application's class loader.
 *
 * corobridge, Kotlin and kotlinx are loaded here by a fresh "shared" loader (fresh statics: no watchdog yet),
 * and two applications by loaders of their own below it. The first application makes the first loop, so the
 * watchdog is born on its thread; the second keeps a loop open, so the watchdog lives on after the first
 * application's loop has closed.
 */
class ClassLoaderLeakTest {
    @AfterEach
    fun noThreadsLeft() {
        assertNoThreads("corobridge-loop-leak-")
        assertNoThreads("corobridge-worker-leak-")
        assertNoThreads("corobridge-loop-default-rehearsal")
    }

    private fun location(type: Class<*>): URL = type.protectionDomain.codeSource.location

    @Test
    fun `an application's class loader can be collected after its loop is closed`() {
        val shared = URLClassLoader(
            "shared",
            arrayOf(location(RunSyncLoop::class.java), location(KotlinVersion::class.java), location(kotlinx.coroutines.Job::class.java)),
            ClassLoader.getPlatformClassLoader(),
        )
        val tests = location(ClassLoaderLeakTest::class.java)
        val (appLoader, appLoop) = startFirstApp(shared, tests)
        val keeper = start(URLClassLoader("keeper-app", arrayOf(tests), shared), "leak-keeper", first = false)
        try {
            appLoop.close()
            val unloaded = awaitCollected(appLoader)
            assertNull(unloaded.get(), "the first application's class loader is still reachable after its loop closed")
        } finally {
            keeper.close()
        }
    }

    @Test
    fun `the default loop closes at exit although the class loader was closed when main returned`() {
        // What `mvn exec:java` does: the program's loader is closed when main returns, before the JVM's
        // shutdown hooks run; the hook must then close the default loop without loading any class.
        val program = URLClassLoader(
            "program",
            arrayOf(location(RunSyncLoop::class.java), location(KotlinVersion::class.java), location(kotlinx.coroutines.Job::class.java)),
            ClassLoader.getPlatformClassLoader(),
        )
        val loopClass = program.loadClass("io.corobridge.core.RunSyncLoop")
        val callClass = program.loadClass("io.corobridge.core.SuspendCall")
        val default = loopClass.getMethod("getDefault").invoke(null)
        val callbackRan = java.util.concurrent.atomic.AtomicBoolean()
        program.loadClass("io.corobridge.core.ShutdownCallbacksKt").getMethod("onShutdown", loopClass, Runnable::class.java)
            .invoke(null, default, Runnable { callbackRan.set(true) })
        val call = java.lang.reflect.Proxy.newProxyInstance(program, arrayOf(callClass)) { _, method, _ ->
            if (method.name == "invoke") "done" else throw UnsupportedOperationException(method.name)
        }
        val future = loopClass.getMethod("runAsync", callClass).invoke(default, call) as java.util.concurrent.CompletableFuture<*>
        org.junit.jupiter.api.Assertions.assertEquals("done", future.get(10, java.util.concurrent.TimeUnit.SECONDS))
        program.close()
        // The hook's work, called as the hook calls it.
        val closing = loopClass.getDeclaredMethod("getClosing\$corobridge_kotlin").invoke(default)
        closing.javaClass.getMethod("shutdown", Long::class.javaPrimitiveType).invoke(closing, 5_000_000_000L)
        org.junit.jupiter.api.Assertions.assertTrue(callbackRan.get(), "the shutdown callback ran")
    }

    /** Starts the first application; returns only a weak reference to its loader, so nothing here holds it. */
    private fun startFirstApp(shared: ClassLoader, tests: URL): Pair<WeakReference<ClassLoader>, AutoCloseable> {
        val appLoader = URLClassLoader("first-app", arrayOf(tests), shared)
        val loop = start(appLoader, "leak-first", first = true)
        return WeakReference<ClassLoader>(appLoader) to loop
    }

    /** Runs LoaderApp.start in [loader] on a thread of that application (its context class loader set). */
    private fun start(loader: ClassLoader, name: String, first: Boolean): AutoCloseable {
        var result: AutoCloseable? = null
        var failure: Throwable? = null
        val appThread = Thread {
            try {
                val app = loader.loadClass("io.corobridge.core.leak.LoaderApp").getConstructor().newInstance()
                result = app.javaClass.getMethod("start", String::class.java).invoke(app, name) as AutoCloseable
            } catch (t: Throwable) {
                failure = t
            }
        }
        appThread.contextClassLoader = loader
        appThread.start()
        appThread.join()
        failure?.let { throw AssertionError("application $name failed to start (first: $first)", it) }
        return result!!
    }

    private fun awaitCollected(ref: WeakReference<ClassLoader>): WeakReference<ClassLoader> {
        repeat(20) {
            if (ref.get() == null) return ref
            System.gc()
            Thread.yield()
        }
        return ref
    }
}
