package io.corobridge.core.internal

/*
 * Reporting must never fail because of what it reports. User exceptions and objects reach corobridge's
 * messages and logs, and a toString() or getMessage() that throws (or a logging back end that trips over one)
 * would otherwise escape from the code that completes a call or a future, and lose its result.
 */

/**
 * Logs [message] with [failure]'s stack trace. If that throws (the failure cannot be printed), logs the
 * message again naming the failure by its class only; never throws.
 */
internal fun System.Logger.logFailure(level: System.Logger.Level, message: String, failure: Throwable) {
    try {
        log(level, message, failure)
    } catch (unprintable: Throwable) {
        if (unprintable is VirtualMachineError) throw unprintable
        try {
            log(
                level,
                "$message (a ${failure.javaClass.name}, whose stack trace could not be printed: printing it threw " +
                    "${unprintable.javaClass.name})",
            )
        } catch (broken: Exception) {
            // The logger fails even without the failure: standard error is the last place left to say it.
            System.err.println("corobridge: $message (logging it failed with ${broken.javaClass.name})")
        }
    }
}

/** [value]'s toString(), or its class name if toString() throws or returns null. */
internal fun describe(value: Any?): String {
    if (value == null) return "null"
    return try {
        val text: String? = value.toString() // Java code can return null here
        text ?: value.javaClass.name
    } catch (e: Exception) {
        "${value.javaClass.name} (its toString() threw ${e.javaClass.name})"
    }
}
