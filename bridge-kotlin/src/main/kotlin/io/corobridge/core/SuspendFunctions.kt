package io.corobridge.core

import io.corobridge.core.internal.Facades
import java.lang.reflect.Method
import kotlin.coroutines.Continuation
import kotlin.reflect.KFunction

/**
 * Tells suspend functions from ordinary ones by reflection, as Prefect's `is_async_fn` does for coroutine
 * functions, without kotlin-reflect: a compiled suspend function takes a [Continuation] last and returns
 * `Object`. Safe from any thread.
 *
 * @since 0.1
 */
public object SuspendFunctions {
    /**
     * True if [method] runs a suspend function:
     * - a Kotlin suspend function or suspend lambda body (a trailing [Continuation], an `Object` result;
     *   a Java method of that shape is a suspend function for Kotlin callers too);
     * - a wrapper the Kotlin compiler generates around one: a `name$default` bridge for default arguments, a
     *   `$suspendImpl` helper, an interface's `DefaultImpls` method;
     * - a method of a facade object (from [RunSyncLoop.facade]) that the facade runs through a suspend method,
     *   whether it blocks (`load`) or returns a future (`loadAsync`); its default methods and `toString`,
     *   `equals`, `hashCode` are not.
     *
     * @since 0.1
     */
    @JvmStatic
    public fun isSuspend(method: Method): Boolean {
        Facades.isSuspendBacked(method)?.let { return it }
        if (method.returnType != Any::class.java) return false
        val params = method.parameterTypes
        if (params.isNotEmpty() && params.last() == Continuation::class.java) return true
        // name$default(receiver, params..., Continuation, int mask, Object marker)
        return method.name.endsWith("\$default") && params.size >= 3 && params[params.size - 3] == Continuation::class.java
    }

    /**
     * True if [function] is a suspend function: a suspend lambda, a reference to a suspend function
     * (`Store::aload`), or a [KFunction] of one. Uses kotlin-reflect when it is on the class path, and the
     * compiler's markers otherwise.
     *
     * @since 0.1
     */
    @JvmStatic
    public fun isSuspend(function: Function<*>): Boolean {
        if (SUSPEND_MARKER?.isInstance(function) == true) return true
        if (function !is KFunction<*>) return false
        // A reference made by the compiler records its JVM signature; this needs no kotlin-reflect.
        (function as? kotlin.jvm.internal.CallableReference)?.let { return it.signature.endsWith(SUSPEND_SIGNATURE_END) }
        // Any other KFunction was made by kotlin-reflect, which is then on the class path to answer.
        @Suppress("NO_REFLECTION_IN_CLASS_PATH")
        return function.isSuspend
    }

    private const val SUSPEND_SIGNATURE_END = "Lkotlin/coroutines/Continuation;)Ljava/lang/Object;"

    /** The stdlib's marker interface of suspend lambdas and suspend function references (not public API). */
    private val SUSPEND_MARKER: Class<*>? = try {
        Class.forName("kotlin.coroutines.jvm.internal.SuspendFunction", false, Continuation::class.java.classLoader)
    } catch (_: ClassNotFoundException) {
        null
    }
}
