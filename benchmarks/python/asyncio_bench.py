#!/usr/bin/env python3
"""Measures the mechanism under Prefect's blocking wrapper, for the side-by-side table.

A thread runs an asyncio event loop (Prefect's "run sync" loop); the caller hands it a coroutine with
asyncio.run_coroutine_threadsafe(...) and blocks on .result(). Also times asyncio.gather of 10,000 trivial
coroutines on that loop. Standard library only. Prints one JSON object.

Usage: python3 asyncio_bench.py [quick|full]
"""
import asyncio
import json
import platform
import statistics
import sys
import threading
import time


async def answer():
    return 42


async def suspend_once():
    await asyncio.sleep(0)
    return 42


async def gather_trivial(n):
    return len(await asyncio.gather(*(answer() for _ in range(n))))


def per_call_micros(loop, make_coro, calls):
    start = time.perf_counter()
    for _ in range(calls):
        asyncio.run_coroutine_threadsafe(make_coro(), loop).result()
    return (time.perf_counter() - start) / calls * 1e6


def main():
    profile = sys.argv[1] if len(sys.argv) > 1 else "quick"
    rounds, calls = (5, 2000) if profile == "quick" else (10, 10000)
    loop = asyncio.new_event_loop()
    runner = threading.Thread(target=loop.run_forever, name="run-sync-loop", daemon=True)
    runner.start()
    try:
        per_call_micros(loop, answer, calls)  # warm-up
        immediate = [per_call_micros(loop, answer, calls) for _ in range(rounds)]
        suspending = [per_call_micros(loop, suspend_once, calls) for _ in range(rounds)]
        gather_millis = []
        for _ in range(rounds):
            start = time.perf_counter()
            asyncio.run_coroutine_threadsafe(gather_trivial(10_000), loop).result()
            gather_millis.append((time.perf_counter() - start) * 1e3)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        runner.join()
        loop.close()
    print(json.dumps({
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "runCoroutineThreadsafeMicros": {"immediate": statistics.median(immediate),
                                         "suspendOnce": statistics.median(suspending)},
        "gather10000Millis": statistics.median(gather_millis),
        "rounds": rounds,
        "callsPerRound": calls,
    }))


if __name__ == "__main__":
    main()
