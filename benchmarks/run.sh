#!/usr/bin/env bash
# Runs the benchmark suite on JDK 17 (the default java) and, if installed, Temurin 25, measures Python's
# asyncio hand-off when python3 exists, and regenerates docs/benchmarks.md and docs/benchmarks.png from the
# JMH JSON it writes under benchmarks/results/.
#
# Usage: benchmarks/run.sh [quick|full|smoke]
#   quick  (default) 1 fork, short iterations, 3 rounds of real I/O and of many callers, 9 of the real-I/O targets'
#          four ways, each real-I/O run after 40 s of warm-up: about 32 minutes on 2 cores
#   full   2 forks, 10 x 1 s iterations, gather up to 100,000, 7 rounds of real I/O: about 2.5 hours
#   smoke  one tiny iteration each: checks the pipeline in a few minutes; its numbers mean nothing
set -euo pipefail
profile=${1:-quick}
cd "$(dirname "$0")/.."

case "$profile" in
  quick)
    # Ten short samples rather than three long ones: JMH's 99.9% interval multiplies the spread by
    # Student's t, 31.6 for 3 samples and 4.8 for 10, so only the latter can tell a target met or missed.
    common=(-f 1 -wi 3 -w 200ms -i 10 -r 200ms)
    gather=(-p n=1000,10000)
    multi=(-bm thrpt -p call=immediate)
    http=(3 800)
    settle=(9 1500)
    warm=(40)
    scale=(3 800)
    suspend=(15 200000)
    ;;
  smoke)
    common=(-f 1 -wi 1 -w 100ms -i 1 -r 100ms)
    gather=(-p n=1000)
    multi=(-bm thrpt -p call=immediate)
    http=(1 200)
    settle=(1 200)
    warm=(0)
    scale=(1 200)
    suspend=(3 20000)
    ;;
  full)
    common=(-f 2 -wi 5 -w 1s -i 10 -r 1s)
    gather=(-p n=1000,10000,100000)
    multi=()
    http=(7 2000)
    settle=(15 2000)
    warm=(60)
    scale=(5 2000)
    suspend=(31 500000)
    ;;
  *)
    echo "usage: $0 [quick|full|smoke]" >&2
    exit 2
    ;;
esac

mvn -q -B -ntp -pl benchmarks -am package -DskipTests
jar=benchmarks/target/benchmarks.jar
out=benchmarks/results
rm -rf "$out"
mkdir -p "$out"

javas=("$(command -v java)")
for candidate in /usr/lib/jvm/temurin-25*/bin/java; do
  if [ -x "$candidate" ]; then
    javas+=("$candidate")
    break
  fi
done

for java in "${javas[@]}"; do
  feature=$("$java" -XshowSettings:properties -version 2>&1 | awk -F'= ' '/java.specification.version/ {print $2}')
  dir="$out/jdk$feature"
  mkdir -p "$dir"
  echo "== JDK $feature ($java), profile $profile"
  jmh() {
    local name=$1
    shift
    echo "   $name"
    "$java" -jar "$jar" "$@" "${common[@]}" -prof gc -rf json -rff "$dir/$name.json" > "$dir/$name.log" 2>&1
  }
  jmh single SingleCallerBenchmark
  jmh floor FloorBenchmark
  jmh gather GatherBenchmark "${gather[@]}"
  jmh features FeatureCostBenchmark
  jmh stream StreamBenchmark
  jmh limits SharedLimitsBenchmark
  jmh limits-contended SharedLimitsContendedBenchmark
  for threads in 2 4 8; do
    jmh "multi-t$threads" MultiCallerBenchmark -t "$threads" "${multi[@]}"
  done
  echo "   http (a Ktor client against a Ktor server on loopback)"
  "$java" -cp "$jar" io.corobridge.benchmarks.http.HttpBenchmark "${http[@]}" "$dir/http.json" - - - \
    "${warm[@]}" 2> "$dir/http.log"
  echo "   http, settled (the ways the targets name, alone, in more and longer rounds)"
  "$java" -cp "$jar" io.corobridge.benchmarks.http.HttpBenchmark "${settle[@]}" "$dir/http-settled.json" \
    runBlocking,futureOnOneThread,bridgeSync,bridgeSyncCallerThread 1,8 immediate "${warm[@]}" 2> "$dir/http-settled.log"
  echo "   scale (1, 8, 64 platform callers; 1,000 and 10,000 virtual ones where the JDK has them)"
  "$java" -cp "$jar" io.corobridge.benchmarks.CallerScale "${scale[@]}" "$dir/scale.json" 2> "$dir/scale.log"
  "$java" -cp "$jar" io.corobridge.benchmarks.IdleCpu > "$dir/idle.json"
  "$java" -cp "$jar" io.corobridge.benchmarks.CallBytes > "$dir/callbytes.json"
  "$java" -cp "$jar" io.corobridge.benchmarks.SuspendCost "${suspend[@]}" > "$dir/suspend.json"
done

if command -v python3 > /dev/null; then
  echo "== Python asyncio"
  python3 benchmarks/python/asyncio_bench.py "$profile" > "$out/python.json"
fi

java -Djava.awt.headless=true -cp "$jar" io.corobridge.benchmarks.report.Report \
  "$out" "$profile" docs/benchmarks.md docs/benchmarks.png
echo "== wrote docs/benchmarks.md and docs/benchmarks.png"
