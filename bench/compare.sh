#!/usr/bin/env bash
# Interleaved runs of River's no-op jobs/s (bench/river) and longrun's whole
# executions/s (internal/devapp.BenchmarkEndToEnd), each pair back to back so
# both see the same machine, then the ratio of each pair. Every run is printed;
# docs/benchmarks.md keeps them all, not the best.
#   RUNS=3 N=3000 bench/compare.sh
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${RUNS:-3}
n=${N:-3000}
(cd bench/river && go build -o river-bench .)
go test -c -o bench/devapp.test ./internal/devapp
printf '%-4s %14s %18s %8s %14s\n' run "river jobs/s" "longrun execs/s" ratio "start p99 ms"
for i in $(seq 1 "$runs"); do
  river=$(bench/river/river-bench -jobs "$n" | awk '/BenchmarkRiverNoop/ {print $3}')
  out=$(cd internal/devapp && ../../bench/devapp.test -test.run '^$' -test.bench BenchmarkEndToEnd -test.benchtime "${n}x" -test.count 1)
  ours=$(awk '/BenchmarkEndToEnd/ {for (f = 1; f <= NF; f++) if ($f == "executions/s") print $(f-1)}' <<<"$out")
  p99=$(awk '/BenchmarkEndToEnd/ {for (f = 1; f <= NF; f++) if ($f == "start-p99-ms") print $(f-1)}' <<<"$out")
  printf '%-4s %14s %18s %8.2f %14s\n' "$i" "$river" "$ours" "$(awk -v a="$ours" -v b="$river" 'BEGIN {print a / b}')" "$p99"
done
rm -f bench/river/river-bench bench/devapp.test
