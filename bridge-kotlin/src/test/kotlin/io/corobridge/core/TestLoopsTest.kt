package io.corobridge.core

import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertThrows
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test

/** The tests' own leak check: it must fail when a test leaves a loop running, or it proves nothing. */
class TestLoopsTest {
    @Test
    fun `a loop left open fails the check, and loops made through it are closed`() {
        val check = TestLoops()
        check.start()
        val own = check.create("check-own")
        own.runSync { }
        val forgotten = RunSyncLoop.create("check-forgotten")
        forgotten.runSync { }
        try {
            val failure = assertThrows(AssertionError::class.java) { check.finish() }
            assertTrue(failure.message!!.contains("corobridge-loop-check-forgotten"), failure.message)
            assertFalse(failure.message!!.contains("check-own"), failure.message)
            assertTrue(own.isClosed, "the loop made through the check was closed")
        } finally {
            forgotten.close()
        }
        check.start()
        check.finish() // nothing left: passes
    }
}
