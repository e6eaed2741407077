package io.corobridge.benchmarks;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/** The benchmark programs refuse bad arguments with an error that names them, before anything runs. */
class ArgsTest {
    @Test
    void aNumberBelowItsLeastOrNoNumberIsRefusedNamingTheArgument() {
        assertEquals(15, Args.atLeast(1, " 15", "rounds"));
        assertEquals(0, Args.atLeast(0, "0", "warmUpSeconds"));
        IllegalArgumentException zero = assertThrows(IllegalArgumentException.class, () -> Args.atLeast(1, "0", "rounds"));
        assertEquals("rounds must be a whole number of at least 1, was \"0\"", zero.getMessage());
        IllegalArgumentException word = assertThrows(IllegalArgumentException.class,
                () -> Args.atLeast(1, "many", "callsPerBlock"));
        assertEquals("callsPerBlock must be a whole number of at least 1, was \"many\"", word.getMessage());
    }

    @Test
    void aDashOrAMissingArgumentKeepsTheDefault() {
        String[] args = {"3", "-"};
        assertTrue(Args.given(args, 0));
        assertFalse(Args.given(args, 1));
        assertFalse(Args.given(args, 2));
    }

    @Test
    void callerScaleRefusesAnUnknownWayBeforeItMeasures() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> CallerScale.main(new String[] {"1", "1", "-", "bridgeSync,nope"}));
        assertTrue(e.getMessage().startsWith("ways must be among bridgeSync,"), e.getMessage());
        assertTrue(e.getMessage().endsWith("was \"nope\""), e.getMessage());
    }

    @Test
    void suspendCostRefusesNoRounds() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> SuspendCost.main(new String[] {"0"}));
        assertEquals("rounds must be a whole number of at least 1, was \"0\"", e.getMessage());
    }
}
