package io.corobridge.core.internal

import jdk.jfr.Category
import jdk.jfr.Description
import jdk.jfr.Enabled
import jdk.jfr.Event
import jdk.jfr.Label
import jdk.jfr.Name
import jdk.jfr.StackTrace
import jdk.jfr.Timespan

/*
 * JDK Flight Recorder events, so that calls and stalls show up in a recording next to GC, locks and I/O.
 * Both are off unless a recording enables them (`jfr configure` or a .jfc naming them), as the threading model
 * says: @Enabled(false), since an event without it is on in every recording, the JDK's default one included
 * (until 0.2 they lacked it, and a continuous recording took an event for every blocking call).
 *
 * A blocking call makes its event only while a recording enables it (CallEvents.begin). Making it every time
 * and relying on the JIT to remove an unused event worked only until the first recording of any kind: once
 * JFR has started, event classes are instrumented, the JIT no longer removed the object, and each call
 * allocated 32 B more (96 instead of 64), for as long as we measured, on JDK 17 and 25 alike.
 */

/** One blocking call into a loop, from submission to the caller's return; on the caller's thread. */
@Name("io.corobridge.Call")
@Label("Blocking call into a loop")
@Category("corobridge")
@Description("A Bridge.sync / RunSyncLoop.runSync call: its duration is the caller's wait, hand-offs included.")
@StackTrace(false)
@Enabled(false) // one per blocking call: only where a recording names it
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
@Enabled(false)
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

/** The blocking call's event, made only when a recording enables it. */
internal object CallEvents {
    /** The event's type, looked up once JFR has started (looking it up earlier would start it). */
    @Volatile
    private var type: jdk.jfr.EventType? = null

    /** Set if the event's type could not be looked up: then every call makes its event, as JFR alone would have. */
    @Volatile
    private var lookUpFailed = false

    /** A begun event for a blocking call, or null when no recording enables it (then nothing is allocated). */
    fun begin(): CallEvent? {
        if (!jdk.jfr.FlightRecorder.isInitialized()) return null
        val known = type ?: lookUp()
        if (known != null && !known.isEnabled) return null
        return CallEvent().also { it.begin() }
    }

    private fun lookUp(): jdk.jfr.EventType? {
        if (lookUpFailed) return null
        return try {
            jdk.jfr.FlightRecorder.register(CallEvent::class.java) // ignored if JFR registered it already
            jdk.jfr.EventType.getEventType(CallEvent::class.java).also { type = it }
        } catch (e: RuntimeException) {
            lookUpFailed = true
            System.getLogger(io.corobridge.core.RunSyncLoop::class.java.name).log(
                System.Logger.Level.WARNING,
                "corobridge could not look up its JFR event type io.corobridge.Call; each blocking call now makes its " +
                    "event whether a recording enables it or not (32 bytes more per call)",
                e,
            )
            null
        }
    }

    /** Ends [event], begun by [begin], for a call on loop [loopName]. */
    fun end(event: CallEvent, loopName: String) {
        if (event.shouldCommit()) {
            event.loop = loopName
            event.commit()
        }
    }
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
