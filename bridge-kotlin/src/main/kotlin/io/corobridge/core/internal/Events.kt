package io.corobridge.core.internal

import jdk.jfr.Category
import jdk.jfr.Description
import jdk.jfr.Event
import jdk.jfr.Label
import jdk.jfr.Name
import jdk.jfr.StackTrace
import jdk.jfr.Timespan

/*
 * JDK Flight Recorder events, so that calls and stalls show up in a recording next to GC, locks and I/O.
 * Both are off unless a recording enables them (`jfr configure` or a .jfc naming them); when off, an event
 * object never escapes the method that makes it and the JIT removes it, so the blocking path allocates
 * nothing for it.
 */

/** One blocking call into a loop, from submission to the caller's return; on the caller's thread. */
@Name("io.corobridge.Call")
@Label("Blocking call into a loop")
@Category("corobridge")
@Description("A Bridge.sync / RunSyncLoop.runSync call: its duration is the caller's wait, hand-offs included.")
@StackTrace(false)
internal class CallEvent : Event() {
    @Label("Loop")
    @JvmField
    var loop: String? = null
}

/** A task that kept a loop thread busy longer than its stall threshold. */
@Name("io.corobridge.Stall")
@Label("Loop stall")
@Category("corobridge")
@Description("One task kept the loop thread busy longer than the stall threshold; other calls on the loop waited.")
@StackTrace(false)
internal class StallEvent : Event() {
    @Label("Loop")
    @JvmField
    var loop: String? = null

    @Label("Stall length")
    @Timespan(Timespan.NANOSECONDS)
    @JvmField
    var length: Long = 0

    @Label("Loop thread stack")
    @Description("The loop thread's stack when the watchdog noticed the stall")
    @JvmField
    var loopStack: String? = null
}

internal object Events {
    fun stall(loopName: String, lengthNanos: Long, stack: Array<StackTraceElement>?) {
        val event = StallEvent()
        if (!event.isEnabled) return
        event.loop = loopName
        event.length = lengthNanos
        event.loopStack = stack?.joinToString("\n") { "\tat $it" }
        event.commit()
    }
}
