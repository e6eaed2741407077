package io.corobridge.examples

import io.ktor.client.HttpClient
import io.ktor.client.request.get
import io.ktor.client.statement.bodyAsText

/**
 * The thin Kotlin wrapper of docs/kotlin-library-from-java.md: Ktor's client, made callable from Java in one
 * step. Ktor's `get` and `bodyAsText` are extension functions with default arguments, and reading a body as a
 * type is `inline reified`; here they become plain member suspend functions, each one call for Java
 * (`Bridge.sync(c -> pages.text(url, c))`) or one method of a facade interface.
 */
class WebPages(private val client: HttpClient) {
    /** GET [url] and read its body as text: two suspending steps, one call. */
    suspend fun text(url: String): String = client.get(url).bodyAsText()

    /** GET [url]; its HTTP status code. */
    suspend fun status(url: String): Int = client.get(url).status.value

    /** GET [url]; its response headers, each name with its values (a generic type: see the guide on wildcards). */
    suspend fun headers(url: String): Map<String, List<String>> =
        client.get(url).headers.entries().associate { (name, values) -> name.lowercase() to values }
}
