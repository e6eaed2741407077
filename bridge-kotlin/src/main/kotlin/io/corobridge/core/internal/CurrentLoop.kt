package io.corobridge.core.internal

import io.corobridge.core.RunContext
import io.corobridge.core.RunSyncLoop
import kotlin.coroutines.ContinuationInterceptor
import kotlinx.coroutines.currentCoroutineContext

/** The loop whose dispatcher runs the calling coroutine, else the loop of this thread, else the default loop. */
internal suspend fun loopOfThisCoroutine(): RunSyncLoop {
    val here = currentCoroutineContext()[ContinuationInterceptor]
    return (here as? LoopDispatcher)?.loop ?: RunContext.currentLoop ?: RunSyncLoop.default
}
