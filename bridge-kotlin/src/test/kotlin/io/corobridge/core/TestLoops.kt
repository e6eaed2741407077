package io.corobridge.core

import java.util.concurrent.CopyOnWriteArrayList
import org.junit.jupiter.api.Assertions.fail
import org.junit.jupiter.api.extension.AfterEachCallback
import org.junit.jupiter.api.extension.BeforeEachCallback
import org.junit.jupiter.api.extension.ExtensionContext

/**
 * The loops of one test, and the check that a test leaves no thread behind: registered in a test class with
 *
 * ```kotlin
 * @JvmField @RegisterExtension val loops = TestLoops()
 * private val loop = loops.create("gather")
 * ```
 *
 * After each test it closes the loops made with [create], newest first, and then fails the test if any loop or
 * worker thread of corobridge that was not alive before the test is still alive: those of its own loops, and
 * those of any loop the test made and closed itself. The default loop's threads live as long as the JVM and
 * are not counted.
 */
class TestLoops : BeforeEachCallback, AfterEachCallback {
    private val loops = CopyOnWriteArrayList<RunSyncLoop>()
    private var before: Set<Thread> = emptySet()

    /** A new loop named [name], closed after the test. */
    fun create(name: String): RunSyncLoop = RunSyncLoop.create(name).also { loops.add(it) }

    override fun beforeEach(context: ExtensionContext) {
        start()
    }

    override fun afterEach(context: ExtensionContext) {
        finish()
    }

    /** Notes the library threads alive before the test. */
    fun start() {
        before = libraryThreads().toSet()
    }

    /** Closes the test's loops and fails if a library thread the test started is still alive. */
    fun finish() {
        var failure: Throwable? = null
        for (loop in loops.reversed()) {
            try {
                loop.close()
            } catch (t: Throwable) {
                if (failure == null) failure = t else failure.addSuppressed(t)
            }
        }
        loops.clear()
        failure?.let { throw it }
        // close() has joined the loop thread and waited for the workers; a thread still alive has leaked.
        val left = libraryThreads().filter { it !in before }
        if (left.isNotEmpty()) fail<Unit>("threads still running after the test: ${left.map { it.name }}")
    }

    private fun libraryThreads(): List<Thread> =
        (liveThreads("corobridge-loop-") + liveThreads("corobridge-worker-")).filter { !it.name.contains("-default") }
}
