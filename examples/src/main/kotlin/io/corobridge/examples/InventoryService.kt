package io.corobridge.examples

import java.io.IOException
import kotlinx.coroutines.delay
import kotlinx.coroutines.flow.Flow
import kotlinx.coroutines.flow.flow

/** What a stock lookup found, and which thread the Kotlin code ran on. */
data class Stock(val sku: String, val count: Int, val thread: String)

/**
 * A Kotlin service written the coroutine way: every operation is a suspend function that waits for
 * (simulated) I/O without holding a thread.
 */
class InventoryService {
    private val shelves = mapOf("apple" to 12, "pear" to 7, "plum" to 0, "fig" to 3, "kiwi" to 21)

    /** Looks up the stock of [sku]; takes about [latencyMillis] of simulated I/O. */
    suspend fun stock(sku: String, latencyMillis: Long): Stock {
        delay(latencyMillis)
        val count = shelves[sku] ?: throw IOException("no shelf holds \"$sku\"")
        return Stock(sku, count, Thread.currentThread().name)
    }

    /** Every shelf's stock, one after another as each lookup ends: a flow, which Java reads as a stream. */
    fun everyShelf(latencyMillis: Long): Flow<Stock> = flow {
        try {
            for (sku in shelves.keys) emit(stock(sku, latencyMillis))
        } finally {
            println("   (the flow's finally ran on '${Thread.currentThread().name.substringBefore(" @")}')")
        }
    }
}
