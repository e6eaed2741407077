package io.corobridge.core.internal

import org.jetbrains.lincheck.datastructures.IntGen
import org.jetbrains.lincheck.datastructures.ModelCheckingOptions
import org.jetbrains.lincheck.datastructures.Operation
import org.jetbrains.lincheck.datastructures.Options
import org.jetbrains.lincheck.datastructures.Param
import org.jetbrains.lincheck.datastructures.StressOptions
import org.junit.jupiter.api.Test

/*
 * Lincheck generates small scenarios of operations on one TaskQueue, runs them from several threads and checks
 * every outcome against a sequential model. Model checking switches threads at each shared-memory access and
 * explores those interleavings; stress testing runs the same kind of scenario on real threads, where the JIT
 * and the memory model take part. The consumer's operations share a non-parallel group, so at most one thread
 * runs them, as only the loop thread does.
 *
 * The models are classes of their own on purpose: by default Lincheck compares with the structure itself run
 * sequentially, which would accept a queue that is consistently last in, first out.
 */
class TaskQueueLincheckStressTest {
    @Test
    fun `push poll and drain behave as one FIFO queue in every interleaving`() =
        options(ModelCheckingOptions(), FifoModel::class.java, invocations = 1_000).check(Fifo::class)

    @Test
    fun `push poll and drain behave as one FIFO queue on real threads`() =
        options(StressOptions(), FifoModel::class.java, invocations = 2_000).check(Fifo::class)

    @Test
    fun `takePushed takes what the consumer has not, racing pushes and the consumer, in every interleaving`() =
        options(ModelCheckingOptions(), SplitModel::class.java, invocations = 1_000).check(WithTakePushed::class)

    @Test
    fun `takePushed takes what the consumer has not, racing pushes and the consumer, on real threads`() =
        options(StressOptions(), SplitModel::class.java, invocations = 2_000).check(WithTakePushed::class)

    /** Sized so that each test takes well under a minute on 2 cores; invocations cost most in model checking. */
    private fun <O : Options<O, *>> options(options: O, model: Class<*>, invocations: Int): O = options
        .iterations(30)
        .invocationsPerIteration(invocations)
        .threads(3)
        .actorsPerThread(3)
        .actorsBefore(2)
        .actorsAfter(2)
        .sequentialSpecification(model)

    private class Task(val value: Int) : QueuedTask {
        override var nextInQueue: QueuedTask? = null
        override fun run() {}
    }

    /** The queue with what the loop does with it while it runs: push from anywhere, the rest on the consumer. */
    class Fifo {
        private val queue = TaskQueue()

        @Operation
        fun push(@Param(gen = IntGen::class, conf = "1:9") value: Int) = queue.push(Task(value))

        @Operation(nonParallelGroup = CONSUMER)
        fun poll(): Int? = (queue.poll() as Task?)?.value

        @Operation(nonParallelGroup = CONSUMER)
        fun isEmpty(): Boolean = queue.isEmpty()

        @Operation(nonParallelGroup = CONSUMER)
        fun drain(): List<Int> = values(queue.drain())
    }

    /** A plain FIFO queue. */
    class FifoModel {
        private val items = ArrayDeque<Int>()

        fun push(value: Int) = items.addLast(value)
        fun poll(): Int? = items.removeFirstOrNull()
        fun isEmpty(): Boolean = items.isEmpty()
        fun drain(): List<Int> = items.toList().also { items.clear() }
    }

    /**
     * Adds takePushed from any thread, as when the loop has ended: then a producer that finds it closed takes
     * what is still pushed while the consumer's last drain may run, and each task must go to exactly one of them.
     */
    class WithTakePushed {
        private val queue = TaskQueue()

        @Operation
        fun push(@Param(gen = IntGen::class, conf = "1:9") value: Int) = queue.push(Task(value))

        @Operation(nonParallelGroup = CONSUMER)
        fun poll(): Int? = (queue.poll() as Task?)?.value

        @Operation(nonParallelGroup = CONSUMER)
        fun drain(): List<Int> = values(queue.drain())

        @Operation
        fun takePushed(): List<Int> = values(queue.takePushed())
    }

    /**
     * FIFO, split where the queue splits it: a poll moves everything pushed so far to the consumer's list, and
     * takePushed takes only what was pushed after that. Together the two lists stay in arrival order.
     */
    class SplitModel {
        private val taken = ArrayDeque<Int>()
        private val pushed = ArrayDeque<Int>()

        fun push(value: Int) = pushed.addLast(value)

        fun poll(): Int? {
            if (taken.isEmpty()) {
                taken.addAll(pushed)
                pushed.clear()
            }
            return taken.removeFirstOrNull()
        }

        fun drain(): List<Int> = (taken + pushed).also {
            taken.clear()
            pushed.clear()
        }

        fun takePushed(): List<Int> = pushed.toList().also { pushed.clear() }
    }

    private companion object {
        const val CONSUMER = "consumer"

        fun values(chain: QueuedTask?): List<Int> {
            val values = ArrayList<Int>()
            var task = chain
            while (task != null) {
                values.add((task as Task).value)
                task = task.nextInQueue
            }
            return values
        }
    }
}
