package io.corobridge.core.internal

import io.corobridge.core.RunSyncLoop
import java.util.concurrent.CountDownLatch
import java.util.concurrent.TimeUnit

/*
 * What every thread corobridge owns (loop threads, worker threads, the watchdog, the default loop's shutdown
 * hook) inherits, decided here once instead of taken from whichever thread happened to make it:
 *
 *  - Context class loader: the one that loaded corobridge. A thread made by application code would otherwise
 *    carry that application's loader, and a long-lived thread (the default loop's, the watchdog, the shutdown
 *    hook) would keep the application from being unloaded when a container redeploys it.
 *  - Thread group: a group of our own under the JVM's top group, not the creating thread's. Tools that clean up
 *    "their" threads by group (`mvn exec:java` interrupts and waits for every thread left in the program's group)
 *    then leave ours alone: the loop ends when it is closed, not when a tool decides.
 *  - Inherited access-control context: none of the caller's frames. Up to JDK 23 a new Thread records the
 *    protection domains of the frames that made it (security manager or not), and each domain holds its class
 *    loader; made under doPrivileged, the thread records only corobridge's own frames. ClassLoaderLeakTest
 *    fails on JDK 17 without it.
 *  - Thread-locals: none (every constructor passes inheritThreadLocals = false); context is carried explicitly
 *    (see CarriedContext).
 *
 * Every such thread is a daemon and survives stray interrupts: only closing its loop ends it.
 */
internal object LibraryThreads {
    private val loader: ClassLoader? = RunSyncLoop::class.java.classLoader

    val group: ThreadGroup = newGroup()

    private fun newGroup(): ThreadGroup {
        var top = Thread.currentThread().threadGroup
        while (true) top = top.parent ?: break
        return privileged { ThreadGroup(top, "corobridge") }
    }

    /** Makes a thread with [make] and replaces what it inherited from the calling thread. */
    fun <T : Thread> create(make: () -> T): T = privileged(make).also { thread ->
        thread.contextClassLoader = loader
        thread.isDaemon = true
    }

    /**
     * Waits up to [nanos] for [thread] to end, whatever interrupts arrive meanwhile; an interrupt is kept (the
     * flag is set again on return). True if the thread ended.
     */
    fun joinUninterruptibly(thread: Thread, nanos: Long): Boolean =
        uninterruptibly(nanos, { !thread.isAlive }) { left -> TimeUnit.NANOSECONDS.timedJoin(thread, left) }

    /**
     * Waits up to [nanos] for [latch], whatever interrupts arrive meanwhile (close() waits this way: it must
     * finish, and one of the loop's own workers calling it is interrupted by it); an interrupt is kept.
     * True if the latch opened.
     */
    fun awaitUninterruptibly(latch: CountDownLatch, nanos: Long): Boolean =
        uninterruptibly(nanos, { latch.count == 0L }) { left -> latch.await(left, TimeUnit.NANOSECONDS) }

    /**
     * Calls [wait] with the time left until [done] or [nanos] have passed, waiting on through interrupts and
     * setting the flag again at the end if one came. True if [done].
     */
    private inline fun uninterruptibly(nanos: Long, done: () -> Boolean, wait: (Long) -> Unit): Boolean {
        val deadline = System.nanoTime() + nanos
        var interrupted = false
        try {
            while (!done()) {
                val left = deadline - System.nanoTime()
                if (left <= 0) return false
                try {
                    wait(left)
                } catch (_: InterruptedException) {
                    interrupted = true
                }
            }
            return true
        } finally {
            if (interrupted) Thread.currentThread().interrupt()
        }
    }

    // AccessController is deprecated for removal with the security manager; until it is gone, it is the only
    // way to keep a new thread from recording its maker's frames (see the top of this file).
    @Suppress("DEPRECATION", "removal")
    private fun <T> privileged(action: () -> T): T =
        java.security.AccessController.doPrivileged(java.security.PrivilegedAction { action() })
}
