package io.corobridge.examples;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.sun.net.httpserver.HttpServer;
import io.corobridge.Bridge;
import io.corobridge.LoopBridge;
import io.corobridge.core.RunSyncLoop;
import io.ktor.client.HttpClient;
import io.ktor.client.HttpClientKt;
import io.ktor.client.call.HttpClientCallKt;
import io.ktor.client.engine.cio.CIO;
import io.ktor.client.request.BuildersKt;
import io.ktor.client.statement.HttpResponse;
import io.ktor.client.statement.HttpResponseKt;
import java.io.IOException;
import java.io.OutputStream;
import java.lang.reflect.Method;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import kotlin.Unit;
import kotlin.coroutines.Continuation;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The worked example of docs/kotlin-library-from-java.md, run: Ktor's HTTP client (a real, well-known Kotlin
 * library) called from Java, first as Java sees it, then through a thin Kotlin wrapper and a facade.
 */
class KtorFromJavaTest {
    /** The facade a Java team declares over the wrapper: checked exceptions declared, one method per call. */
    public interface Pages {
        String text(String url) throws IOException;

        CompletableFuture<String> textAsync(String url);

        int status(String url) throws IOException;
    }

    /** A facade over Ktor's HttpClient itself: its get is an extension function, which a facade cannot reach. */
    public interface RawClient {
        HttpResponse get(String url);
    }

    private HttpServer server;
    private String base;
    private RunSyncLoop loop;
    private LoopBridge bridge;
    private HttpClient client;

    @BeforeEach
    void start() throws IOException {
        server = HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 0);
        server.createContext("/hello", exchange -> {
            byte[] body = "hello, java".getBytes(StandardCharsets.UTF_8);
            exchange.sendResponseHeaders(200, body.length);
            try (OutputStream out = exchange.getResponseBody()) {
                out.write(body);
            }
        });
        server.start();
        base = "http://127.0.0.1:" + server.getAddress().getPort();
        loop = RunSyncLoop.create("ktor-from-java");
        bridge = Bridge.on(loop);
        // A top-level function with a default argument: Java sees HttpClientKt.HttpClient and passes every argument.
        client = HttpClientKt.HttpClient(CIO.INSTANCE, config -> Unit.INSTANCE);
    }

    @AfterEach
    void stop() {
        client.close();
        loop.close();
        server.stop(0);
    }

    @Test
    void asJavaSeesIt_extensionFunctionsAreStaticMethodsAndEveryArgumentIsPassed() {
        // client.get(url) in Kotlin: a static method of BuildersKt taking the client first, its builder lambda too.
        HttpResponse response = bridge.sync(c -> BuildersKt.get(client, base + "/hello", builder -> Unit.INSTANCE, c));
        assertEquals(200, response.getStatus().getValue());
        // response.bodyAsText() in Kotlin: a second suspend call, so a second Bridge.sync (a SuspendCall makes one).
        String text = bridge.sync(c -> HttpResponseKt.bodyAsText(response, StandardCharsets.UTF_8, c));
        assertEquals("hello, java", text);
    }

    @Test
    void aGenericResultIsDeclaredWithTheWildcardsKotlinPutsOnTheContinuation() {
        WebPages pages = new WebPages(client);
        // Map<String, List<String>> in Kotlin: its continuation is Continuation<? super Map<String, ? extends
        // List<String>>>, so the plain Map<String, List<String>> does not compile; the wildcard type does.
        Map<String, ? extends List<String>> headers = bridge.sync(c -> pages.headers(base + "/hello", c));
        assertEquals(List.of("11"), headers.get("content-length"));
        // A typed variable, not println(bridge.sync(..)) directly: that call is ambiguous between println's overloads.
        int status = bridge.sync(c -> pages.status(base + "/hello", c));
        assertEquals(200, status);
    }

    @Test
    void anInlineReifiedFunctionIsHiddenFromJava() throws Exception {
        // response.body<String>() is inline reified: its method exists only for Kotlin's compiler (synthetic), so
        // javac does not offer it; HttpClientCallKt.body(response, c) does not compile. A wrapper is the way.
        Method reified = HttpClientCallKt.class.getMethod("body", HttpResponse.class, Continuation.class);
        assertTrue(reified.isSynthetic(), reified.toString());
    }

    @Test
    void throughAThinWrapperAndAFacade_oneCallPerMethodAndCheckedExceptionsDeclared() throws Exception {
        Pages pages = bridge.facade(Pages.class, new WebPages(client));
        assertEquals("hello, java", pages.text(base + "/hello"));
        assertEquals(404, pages.status(base + "/nowhere"));
        assertEquals("hello, java", pages.textAsync(base + "/hello").get(10, TimeUnit.SECONDS));
        // Nothing listens on port 1: Ktor's failure reaches Java as the checked exception the facade declares.
        IOException refused = assertThrows(IOException.class, () -> pages.text("http://127.0.0.1:1/"));
        assertTrue(refused.getMessage() != null || refused.getCause() != null, refused.toString());
    }

    @Test
    void aFacadeOverTheClientItselfSaysWhyItCannotReachAnExtensionFunction() {
        IllegalArgumentException thrown = assertThrows(IllegalArgumentException.class,
                () -> bridge.facade(RawClient.class, client));
        assertTrue(thrown.getMessage().contains("HttpClient has no suspend function get (if it is an extension function"),
                thrown.getMessage());
    }
}
