package io.corobridge.core

import java.util.concurrent.CancellationException
import java.util.concurrent.CopyOnWriteArrayList
import java.util.concurrent.CountDownLatch
import java.util.concurrent.atomic.AtomicBoolean
import java.util.concurrent.atomic.AtomicReference
import kotlin.concurrent.thread
import kotlinx.coroutines.NonCancellable
import kotlinx.coroutines.awaitCancellation
import kotlinx.coroutines.withContext
import java.util.logging.Handler
import java.util.logging.Level
import java.util.logging.LogRecord
import java.util.logging.Logger
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertInstanceOf
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Assertions.fail

/** Live threads whose name starts with [prefix]. */
fun liveThreads(prefix: String): List<Thread> =
    Thread.getAllStackTraces().keys.filter { it.isAlive && it.name.startsWith(prefix) }

/** Fails if a thread whose name starts with [prefix] is still alive. */
fun assertNoThreads(prefix: String) {
    val left = liveThreads(prefix)
    if (left.isNotEmpty()) fail<Unit>("threads still running: ${left.map { it.name }}")
}

/** Captures what corobridge logs through System.Logger (which goes to java.util.logging by default). */
class LogCapture(loggerName: String = RunSyncLoop::class.java.name) : AutoCloseable {
    private val logger: Logger = Logger.getLogger(loggerName)
    val records: MutableList<LogRecord> = CopyOnWriteArrayList()
    private val handler = object : Handler() {
        override fun publish(record: LogRecord) {
            records.add(record)
        }

        override fun flush() {}
        override fun close() {}
    }

    private val printedBefore = logger.useParentHandlers
    private val levelBefore: Level? = logger.level

    init {
        logger.level = Level.ALL // DEBUG reports (FINE) too
        logger.addHandler(handler)
        // What a test provokes on purpose is checked here, not printed to the build log.
        logger.useParentHandlers = false
    }

    fun messages(level: Level): List<String> = records.filter { it.level == level }.map { it.message }

    override fun close() {
        logger.removeHandler(handler)
        logger.useParentHandlers = printedBefore
        logger.level = levelBefore
    }
}

/** Runs [block] [times] times, naming the failing round. */
inline fun repeatRounds(times: Int, block: (Int) -> Unit) {
    for (round in 1..times) {
        try {
            block(round)
        } catch (e: Throwable) {
            e.addSuppressed(AssertionError("failed in round $round of $times"))
            throw e
        }
    }
}

/** Asserts the same instance, with a readable message. */
fun assertSameInstance(expected: Throwable, actual: Throwable?) {
    if (expected !== actual) {
        assertEquals(expected, actual, "expected the very exception thrown on the loop")
    }
}

/**
 * Interrupts a caller blocked in [RunSyncLoop.runSync] whose call then sits in its finally block until the
 * test releases it, and asserts: the caller gets a CancellationException saying it was interrupted, only after
 * the finally block finished, with its interrupt flag set again. [rounds] times, the call run where [runOn] says.
 */
fun assertInterruptCancelsAndWaitsForFinally(
    loop: RunSyncLoop,
    rounds: Int,
    runOn: RunOn = RunOn.LOOP,
) {
    repeatRounds(rounds) {
        val started = CountDownLatch(1)
        val finallyEntered = CountDownLatch(1)
        val release = CountDownLatch(1)
        val finallyDone = AtomicBoolean()
        val thrown = AtomicReference<Throwable>()
        val finallyAtReturn = AtomicBoolean()
        val interruptedAtReturn = AtomicBoolean()
        val caller = thread {
            try {
                loop.runSync(runOn) {
                    try {
                        started.countDown()
                        awaitCancellation()
                    } finally {
                        withContext(NonCancellable) {
                            finallyEntered.countDown()
                            release.await()
                            finallyDone.set(true)
                        }
                    }
                }
            } catch (e: Throwable) {
                thrown.set(e)
                finallyAtReturn.set(finallyDone.get())
                interruptedAtReturn.set(Thread.currentThread().isInterrupted)
            }
        }
        started.await()
        caller.interrupt()
        finallyEntered.await()
        release.countDown()
        caller.join()
        assertInstanceOf(CancellationException::class.java, thrown.get())
        assertTrue(thrown.get().message!!.contains("interrupted"), thrown.get().message)
        assertTrue(finallyAtReturn.get(), "the caller returned only after the finally block finished")
        assertTrue(interruptedAtReturn.get(), "the interrupt flag is set again")
    }
}

/**
 * Waits, with a 10 s deadline, for a state that no latch can announce (a thread parking, a thread pool
 * retiring a thread), re-checking between yields; fails naming [what] if it never comes.
 */
fun awaitState(what: String, condition: () -> Boolean) {
    val deadline = System.nanoTime() + java.util.concurrent.TimeUnit.SECONDS.toNanos(10)
    while (!condition()) {
        if (System.nanoTime() - deadline > 0) fail<Unit>("never happened: $what")
        Thread.yield()
    }
}

/**
 * An exception whose getMessage() and toString() throw: what careless user code (or a message built from a
 * closed resource) hands the library. Every path that completes or reports something must survive it.
 */
class HostileException : RuntimeException() {
    override val message: String
        get() = throw IllegalStateException("getMessage() of a hostile exception")

    override fun toString(): String = throw IllegalStateException("toString() of a hostile exception")
}

/** What a child JVM printed (standard output and error together) and its exit code. */
class ChildJvm(val exitCode: Int, val output: String)

/**
 * Runs [mainClass] in a child JVM of the same Java, with [classPath] (this JVM's by default) and [jvmOptions], and
 * waits for it, at most 60 s; fails, with what it printed, if it does not end by then.
 */
fun runChildJvm(
    mainClass: Class<*>,
    vararg jvmOptions: String,
    classPath: String = System.getProperty("java.class.path"),
): ChildJvm {
    val launcher = java.nio.file.Path.of(System.getProperty("java.home"), "bin", "java").toString()
    val child = ProcessBuilder(listOf(launcher) + jvmOptions + listOf("-cp", classPath, mainClass.name))
        .redirectErrorStream(true).start()
    val exited = child.waitFor(60, java.util.concurrent.TimeUnit.SECONDS)
    if (!exited) child.destroyForcibly().waitFor()
    val output = child.inputStream.readAllBytes().toString(Charsets.UTF_8)
    if (!exited) fail<Unit>("the child JVM did not exit within 60 s: $output")
    return ChildJvm(child.exitValue(), output)
}
