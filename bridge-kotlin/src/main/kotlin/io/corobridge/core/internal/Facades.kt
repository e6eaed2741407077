package io.corobridge.core.internal

import io.corobridge.core.SuspendCall
import io.corobridge.core.RunOn
import io.corobridge.core.RunSyncLoop
import java.lang.invoke.MethodHandle
import java.lang.invoke.MethodHandles
import java.lang.invoke.MethodType
import java.lang.reflect.InvocationHandler
import java.lang.reflect.Method
import java.lang.reflect.Modifier
import java.lang.reflect.ParameterizedType
import java.lang.reflect.Proxy
import java.lang.reflect.Type
import java.lang.reflect.TypeVariable
import java.lang.reflect.WildcardType
import java.util.concurrent.CompletableFuture
import java.util.concurrent.CompletionStage
import kotlin.coroutines.Continuation

/*
 * A Java interface implemented over an object with suspend methods. Each abstract method of the interface is
 * matched, when the facade is made, to one suspend method of the implementation: `T load(A)` blocks on the
 * loop, `CompletableFuture<T> loadAsync(A)` (or CompletionStage) returns at once. Every mismatch is collected
 * and reported together; a facade that is made works for every method.
 *
 * A suspend function `load(a: A): T` is, to Java, `Object load(A a, Continuation<? super T> c)`: its result
 * type is read from the continuation's type argument. Calls go through a method handle bound to the
 * implementation and spread over an argument array: no reflection per call.
 */
internal object Facades {
    fun <F : Any> create(loop: RunSyncLoop, facade: Class<F>, implementation: Any, runOn: RunOn): F {
        require(facade.isInterface) { "facadeInterface must be an interface, was ${facade.name}" }
        val problems = ArrayList<String>()
        val invokers = HashMap<Method, Invoker>()
        for (method in facade.methods) {
            if (method.isDefault || Modifier.isStatic(method.modifiers)) continue
            when (val found = match(method, implementation.javaClass)) {
                is Match.Found -> invokers[method] = found.invoker(loop, implementation, runOn)
                is Match.Problem -> problems += "${describe(method)}: ${found.what}"
            }
        }
        if (problems.isNotEmpty()) {
            throw IllegalArgumentException(
                "${facade.name} cannot be a facade over ${implementation.javaClass.name}; " +
                    "${problems.size} method(s) do not match:\n  - " + problems.sorted().joinToString("\n  - ")
            )
        }
        val handler = FacadeHandler(facade, implementation, invokers)
        val proxy = Proxy.newProxyInstance(facade.classLoader, arrayOf(facade), handler)
        synchronized(proxyClasses) { proxyClasses[proxy.javaClass] = facade }
        return facade.cast(proxy)
    }

    /** The proxy classes made for facades, with their interface; weak, so that unloading is not prevented. */
    private val proxyClasses = java.util.WeakHashMap<Class<*>, Class<*>>()

    /**
     * For a method of a facade's proxy class: whether the facade runs it through a suspend method (its
     * interface declares it abstract). Null for a method of any other class.
     */
    fun isSuspendBacked(method: Method): Boolean? {
        if (!Proxy.isProxyClass(method.declaringClass)) return null
        val facade = synchronized(proxyClasses) { proxyClasses[method.declaringClass] } ?: return null
        val declared = try {
            facade.getMethod(method.name, *method.parameterTypes)
        } catch (_: NoSuchMethodException) {
            return false // toString, equals, hashCode: the proxy's own
        }
        return !declared.isDefault && !Modifier.isStatic(declared.modifiers)
    }

    private sealed class Match {
        class Found(val target: Method, val async: Boolean) : Match() {
            fun invoker(loop: RunSyncLoop, implementation: Any, runOn: RunOn): Invoker {
                val arity = target.parameterCount
                val handle = MethodHandles.publicLookup().unreflect(target).bindTo(implementation)
                    .asType(MethodType.genericMethodType(arity))
                    .asSpreader(Array<Any?>::class.java, arity)
                return Invoker(loop, handle, arity, async, runOn)
            }
        }

        class Problem(val what: String) : Match()
    }

    private fun match(method: Method, implementation: Class<*>): Match {
        val future = method.returnType == CompletableFuture::class.java || method.returnType == CompletionStage::class.java
        val async = future && method.name.endsWith("Async") && method.name.length > "Async".length
        val name = if (async) method.name.removeSuffix("Async") else method.name
        val params = method.parameterTypes
        val named = implementation.methods.filter {
            it.name == name && !Modifier.isStatic(it.modifiers) && it.parameterCount == params.size + 1 &&
                it.parameterTypes.last() == Continuation::class.java
        }
        if (named.isEmpty()) {
            val plain = implementation.methods.any { it.name == name }
            if (plain) return Match.Problem("${implementation.simpleName}.$name is not a suspend function with ${params.size} parameter(s)")
            val extension = ExtensionFunctions.find(implementation, name)
            return Match.Problem(
                "${implementation.simpleName} has no suspend function $name" + if (extension != null) {
                    "; $name is an extension function (static in ${extension.declaringClass.name}, taking the " +
                        "${implementation.simpleName} as its first argument), which a facade cannot call: give a thin " +
                        "Kotlin class a member suspend fun $name that calls it, and make the facade over that class"
                } else {
                    " (if it is an extension function, a static method of some ...Kt class, a facade cannot call it: " +
                        "wrap it in a member of a thin Kotlin class)"
                }
            )
        }
        val accepting = named.filter { candidate ->
            params.indices.all { i -> wrap(candidate.parameterTypes[i]).isAssignableFrom(wrap(params[i])) }
        }
        val target = when {
            accepting.isEmpty() -> return Match.Problem(
                "no overload of ${implementation.simpleName}.$name accepts (${params.joinToString { it.simpleName }}); " +
                    "there are ${named.joinToString { "(" + it.parameterTypes.dropLast(1).joinToString { p -> p.simpleName } + ")" }}"
            )
            accepting.size == 1 -> accepting[0]
            else -> accepting.singleOrNull { it.parameterTypes.dropLast(1) == params.toList() }
                ?: return Match.Problem(
                    "ambiguous: ${accepting.size} overloads of ${implementation.simpleName}.$name accept " +
                        "(${params.joinToString { it.simpleName }})"
                )
        }
        if (!Modifier.isPublic(target.declaringClass.modifiers)) {
            return Match.Problem("${target.declaringClass.name} is not public, so its methods cannot be called")
        }
        val result = resultType(target)
        val wanted: Class<*>? = if (async) futureArgument(method) else method.returnType
        if (wanted != null && wanted != Void.TYPE && !compatible(result, wanted)) {
            return Match.Problem(
                "returns ${if (async) "a future of " else ""}${wanted.simpleName}, but ${implementation.simpleName}.$name " +
                    "returns ${result.simpleName}"
            )
        }
        return Match.Found(target, async)
    }

    /** What the suspend function returns: the type argument of its `Continuation<? super T>`. */
    private fun resultType(target: Method): Class<*> {
        val continuation = target.genericParameterTypes.last() as? ParameterizedType ?: return Any::class.java
        val argument = continuation.actualTypeArguments[0]
        val bound = if (argument is WildcardType) argument.lowerBounds.firstOrNull() ?: argument.upperBounds[0] else argument
        return erase(bound)
    }

    /** The T of a `CompletableFuture<T>` / `CompletionStage<T>` return type, or null if it is not stated. */
    private fun futureArgument(method: Method): Class<*>? {
        val type = method.genericReturnType as? ParameterizedType ?: return null
        val argument = type.actualTypeArguments[0]
        if (argument is WildcardType && argument.upperBounds[0] == Any::class.java) return null
        return erase(argument)
    }

    private fun erase(type: Type): Class<*> = when (type) {
        is Class<*> -> type
        is ParameterizedType -> type.rawType as Class<*>
        is WildcardType -> erase(type.upperBounds[0])
        is TypeVariable<*> -> erase(type.bounds[0])
        else -> Any::class.java
    }

    /** A result of type [result] can be returned as [wanted]: assignable, boxing allowed; a generic Object may be. */
    private fun compatible(result: Class<*>, wanted: Class<*>): Boolean {
        if (result == Any::class.java) return true // erased to Object: checked by the cast at run time
        if (result == Unit::class.java) return !wanted.isPrimitive && wanted.isAssignableFrom(Unit::class.java)
        return wrap(wanted).isAssignableFrom(wrap(result))
    }

    /** The wrapper class of a primitive type (int -> Integer), other types as they are. */
    private fun wrap(type: Class<*>): Class<*> =
        if (type.isPrimitive) MethodType.methodType(type).wrap().returnType() else type

    private fun describe(method: Method): String =
        "${method.returnType.simpleName} ${method.name}(${method.parameterTypes.joinToString { it.simpleName }})"

    /** Runs one facade method: builds the argument array with the continuation last and hands it to the loop. */
    class Invoker(
        private val loop: RunSyncLoop,
        private val handle: MethodHandle,
        private val arity: Int,
        private val async: Boolean,
        private val runOn: RunOn,
    ) {
        fun invoke(args: Array<out Any?>?): Any? {
            val call = SpreadCall(handle, args, arity)
            return when {
                async -> loop.runAsync(call)
                runOn == RunOn.LOOP -> loop.runSync(call)
                else -> loop.runSync(runOn, call)
            }
        }
    }

    private class SpreadCall(
        private val handle: MethodHandle,
        private val args: Array<out Any?>?,
        private val arity: Int,
    ) : SuspendCall<Any?> {
        override fun invoke(continuation: Continuation<Any?>): Any? {
            val all = arrayOfNulls<Any?>(arity)
            args?.copyInto(all)
            all[arity - 1] = continuation
            return handle.invoke(all)
        }
    }

    private class FacadeHandler(
        private val facade: Class<*>,
        private val implementation: Any,
        private val invokers: Map<Method, Invoker>,
    ) : InvocationHandler {
        override fun invoke(proxy: Any, method: Method, args: Array<out Any?>?): Any? {
            invokers[method]?.let { return it.invoke(args) }
            if (method.isDefault) return InvocationHandler.invokeDefault(proxy, method, *(args ?: emptyArray()))
            return when (method.name) {
                "toString" -> "${facade.simpleName} facade over $implementation"
                "hashCode" -> System.identityHashCode(proxy)
                "equals" -> proxy === args?.get(0)
                else -> throw IllegalStateException("no implementation for $method") // unreachable: checked when made
            }
        }
    }
}

/**
 * Finds, for a facade's error message only, a suspend extension function [name] on [receiver] among the file
 * classes (`...Kt`) of its package in its own jar or class folder: the usual place of a library's extensions.
 */
private object ExtensionFunctions {
    fun find(receiver: Class<*>, name: String): Method? = try {
        fileClasses(receiver).firstNotNullOfOrNull { fileClass ->
            fileClass.methods.firstOrNull {
                it.name == name && Modifier.isStatic(it.modifiers) && it.parameterCount >= 2 &&
                    it.parameterTypes[0].isAssignableFrom(receiver) && it.parameterTypes.last() == Continuation::class.java
            }
        }
    } catch (_: Exception) {
        null // a hint only: a class folder or jar that cannot be read gives the message without it
    } catch (_: LinkageError) {
        null
    }

    private fun fileClasses(receiver: Class<*>): List<Class<*>> {
        val location = receiver.protectionDomain?.codeSource?.location ?: return emptyList()
        val folder = receiver.packageName.replace('.', '/')
        val names = ArrayList<String>()
        val path = java.nio.file.Path.of(location.toURI())
        if (java.nio.file.Files.isDirectory(path)) {
            java.nio.file.Files.list(path.resolve(folder)).use { files ->
                files.forEach { file -> file.fileName.toString().let { if (it.endsWith("Kt.class")) names += it.removeSuffix(".class") } }
            }
        } else {
            java.util.zip.ZipFile(path.toFile()).use { jar ->
                for (entry in jar.entries()) {
                    val entryName = entry.name
                    if (entryName.startsWith("$folder/") && entryName.endsWith("Kt.class") && entryName.indexOf('/', folder.length + 1) < 0) {
                        names += entryName.substring(folder.length + 1).removeSuffix(".class")
                    }
                }
            }
        }
        val prefix = if (receiver.packageName.isEmpty()) "" else receiver.packageName + "."
        return names.sorted().map { Class.forName(prefix + it, false, receiver.classLoader) }
    }
}
