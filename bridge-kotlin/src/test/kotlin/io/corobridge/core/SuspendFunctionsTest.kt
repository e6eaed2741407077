package io.corobridge.core

import java.util.concurrent.CompletableFuture
import kotlinx.coroutines.yield
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.extension.RegisterExtension

open class Suspending {
    suspend fun load(id: Int): String {
        yield()
        return "user-$id"
    }

    suspend fun withDefault(id: Int, prefix: String = "user-"): String = prefix + id

    open suspend fun overridable(id: Int): String = "user-$id"

    fun plain(id: Int): String = "user-$id"

    @Suppress("UNUSED_PARAMETER")
    fun takesContinuationFirst(c: kotlin.coroutines.Continuation<String>, id: Int): Any = id
}

interface SuspendingFacade {
    fun load(id: Int): String

    fun loadAsync(id: Int): CompletableFuture<String>

    fun loadTwice(id: Int): String = load(id) + load(id)
}

class SuspendFunctionsTest {
    @JvmField
    @RegisterExtension
    val loops = TestLoops()
    private val loop = loops.create("suspend-functions")

    private fun method(name: String) = Suspending::class.java.declaredMethods.single { it.name == name }

    @Test
    fun `compiled suspend functions are suspend and ordinary ones are not`() {
        assertTrue(SuspendFunctions.isSuspend(method("load")))
        assertTrue(SuspendFunctions.isSuspend(method("overridable")))
        assertFalse(SuspendFunctions.isSuspend(method("plain")))
        assertFalse(SuspendFunctions.isSuspend(method("takesContinuationFirst")), "a Continuation that is not last")
        assertFalse(SuspendFunctions.isSuspend(Any::class.java.getMethod("toString")))
    }

    @Test
    fun `the compiler's wrappers around suspend functions are seen through`() {
        assertTrue(SuspendFunctions.isSuspend(method("withDefault\$default")), "a default-arguments bridge")
        assertTrue(SuspendFunctions.isSuspend(method("overridable\$suspendImpl")), "an open function's helper")
    }

    @Test
    fun `a facade's methods are seen through to the suspend functions behind them`() {
        val facade = loop.facade(SuspendingFacade::class.java, Suspending())
        assertEquals("user-1user-1", facade.loadTwice(1), "the facade works")
        val type = facade.javaClass
        assertTrue(SuspendFunctions.isSuspend(type.getMethod("load", Int::class.javaPrimitiveType)), "blocking")
        assertTrue(SuspendFunctions.isSuspend(type.getMethod("loadAsync", Int::class.javaPrimitiveType)), "future")
        assertFalse(SuspendFunctions.isSuspend(type.getMethod("loadTwice", Int::class.javaPrimitiveType)), "default")
        assertFalse(SuspendFunctions.isSuspend(type.getMethod("toString")), "the proxy's own")
        assertFalse(
            SuspendFunctions.isSuspend(SuspendingFacade::class.java.getMethod("load", Int::class.javaPrimitiveType)),
            "the interface's own method is an ordinary method; only a facade object's are seen through",
        )
    }

    @Test
    fun `function references and lambdas`() {
        val instance = Suspending()
        assertTrue(SuspendFunctions.isSuspend(Suspending::load))
        assertTrue(SuspendFunctions.isSuspend(instance::load), "bound reference")
        assertFalse(SuspendFunctions.isSuspend(Suspending::plain))
        assertFalse(SuspendFunctions.isSuspend(instance::plain), "bound reference")
        val suspendLambda: suspend () -> Int = { 1 }
        val plainLambda: () -> Int = { 1 }
        assertTrue(SuspendFunctions.isSuspend(suspendLambda))
        assertFalse(SuspendFunctions.isSuspend(plainLambda))
    }
}
