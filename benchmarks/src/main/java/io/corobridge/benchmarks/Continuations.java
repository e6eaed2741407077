package io.corobridge.benchmarks;

import kotlin.coroutines.Continuation;
import kotlin.coroutines.CoroutineContext;
import kotlin.coroutines.EmptyCoroutineContext;

/** A continuation that discards what it is resumed with, for calling a suspend function directly. */
final class Continuations {
    static final Continuation<Object> DISCARD = new Continuation<>() {
        @Override
        public CoroutineContext getContext() {
            return EmptyCoroutineContext.INSTANCE;
        }

        @Override
        public void resumeWith(Object result) {}
    };

    private Continuations() {}
}
