#!/usr/bin/env bash
# A bounded soak run (not part of CI): mixed calls, gathers, limits, workers, background tasks, timeouts and
# cancellations on one loop from 8 threads, while another thread creates and closes loops. Prints heap after
# GC, threads and CPU per operation once a minute after a warm-up, and a verdict on growth.
#
# Usage: benchmarks/soak.sh [minutes]   (default 10; uses both cores: run nothing else meanwhile)
set -euo pipefail
minutes=${1:-10}
cd "$(dirname "$0")/.."
mvn -q -B -ntp -pl benchmarks -am package -DskipTests
exec java -Xmx512m -cp benchmarks/target/benchmarks.jar io.corobridge.benchmarks.Soak "$minutes"
