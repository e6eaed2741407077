package io.corobridge.core.internal

import io.corobridge.core.RunSyncLoop
import kotlinx.coroutines.CoroutineDispatcher
import kotlin.coroutines.CoroutineContext

/** A loop's dispatcher ([RunSyncLoop.dispatcher]); a call finds its loop through it (see LoopCall.loop). */
internal open class LoopDispatcher(@JvmField val loop: RunSyncLoop) : CoroutineDispatcher() {
    override fun dispatch(context: CoroutineContext, block: Runnable) {
        loop.dispatchStep(context, block)
    }

    override fun toString(): String = "RunSyncLoop(\"${loop.name}\").dispatcher"
}
