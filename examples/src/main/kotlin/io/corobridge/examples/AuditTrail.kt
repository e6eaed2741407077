package io.corobridge.examples

import io.corobridge.core.runInWorkerThread
import kotlinx.coroutines.delay
import org.slf4j.MDC

/**
 * Kotlin code that reads the SLF4J MDC, as a logging pattern with `%X{requestId}` would: on the loop thread
 * before and after suspending, and in blocking code on a worker thread.
 */
class AuditTrail {
    suspend fun trace(): String {
        val before = "${Thread.currentThread().name} ${MDC.get("requestId")}"
        delay(20) // simulated I/O: other requests run on the loop meanwhile
        val after = MDC.get("requestId")
        val onWorker = runInWorkerThread { "${Thread.currentThread().name.substringBeforeLast('-')} ${MDC.get("requestId")}" }
        return "on $before, after suspending $after; on $onWorker"
    }
}
