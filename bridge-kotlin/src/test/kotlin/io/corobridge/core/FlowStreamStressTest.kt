package io.corobridge.core

import java.util.concurrent.ThreadLocalRandom
import java.util.concurrent.atomic.AtomicInteger
import kotlinx.coroutines.flow.flow
import kotlinx.coroutines.yield
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.extension.RegisterExtension

/**
 * Streams read while their flows race them: random ring sizes, flows that suspend at random, readers that stop
 * early and close, from several threads at once on one loop. Every element arrives once and in order, every
 * close finds the flow's finally run, and nothing hangs.
 *
 * Slow and racy by design: runs in the stress profile only.
 */
class FlowStreamStressTest {
    @JvmField
    @RegisterExtension
    val loops = TestLoops()
    private val loop = loops.create("stream-stress")

    @Test
    fun `readers on four threads, random rings, early closes`() {
        val failures = java.util.concurrent.ConcurrentLinkedQueue<Throwable>()
        val readers = List(4) { reader ->
            Thread({
                try {
                    val random = ThreadLocalRandom.current()
                    repeat(500) { round ->
                        val count = random.nextInt(1, 2000)
                        val stopAt = if (random.nextBoolean()) random.nextInt(0, count) else count
                        val finallies = AtomicInteger()
                        val source = flow {
                            try {
                                for (i in 0 until count) {
                                    if (i % 37 == round % 37) yield()
                                    emit(i)
                                }
                            } finally {
                                finallies.incrementAndGet()
                            }
                        }
                        val read = loop.stream(source, buffer = random.nextInt(1, 70)).use { it.limit(stopAt.toLong()).toList() }
                        assertEquals((0 until stopAt).toList(), read, "reader $reader round $round")
                        // limit(0) reads nothing, and a stream never read never starts its flow.
                        val started = if (stopAt == 0) 0 else 1
                        assertEquals(started, finallies.get(), "the flow ended before close returned (reader $reader round $round)")
                    }
                } catch (e: Throwable) {
                    failures.add(e)
                }
            }, "stream-reader-$reader")
        }
        readers.forEach { it.start() }
        readers.forEach { it.join() }
        assertTrue(failures.isEmpty(), "failures: ${failures.map { it.toString() }}")
    }
}
