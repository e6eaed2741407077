package io.corobridge.benchmarks.http;

/** The blocking face a Java team declares for {@link HttpCalls}, implemented by {@code Bridge.facade}. */
public interface HttpApi {
    /** One request to {@code path}; returns the body's length. */
    int fetch(String path);
}
