/** Adapters between the Java API and the Kotlin core; not API, and left out of the API dump. */
@NullMarked
package io.corobridge.internal;

import org.jspecify.annotations.NullMarked;
