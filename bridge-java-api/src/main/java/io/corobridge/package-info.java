/**
 * Call Kotlin {@code suspend} functions from Java: blocking ({@link io.corobridge.Bridge#sync}), through a
 * {@link java.util.concurrent.CompletableFuture} ({@link io.corobridge.Bridge#async}), on the process-wide
 * run-sync loop or on one of your own ({@link io.corobridge.Bridge#on}).
 *
 * <p>Every type here is null-marked: a parameter or result is non-null unless annotated {@code @Nullable}.
 */
@NullMarked
package io.corobridge;

import org.jspecify.annotations.NullMarked;
