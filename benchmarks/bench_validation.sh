#!/usr/bin/env bash
# The bench table and plots of docs/BENCHMARKS.md in one command:
#   bash benchmarks/bench_validation.sh [OUT_DIR]
# Takes the first 40,000 bytes of the first held-out validation file of each genre
# (data/corpus/valid/<genre>/, built by `lmpress corpus build`), then runs lmpress bench
# on them with levels 1, 6 and 9 beside every installed classical codec; writes JSON, CSV,
# Markdown into OUT_DIR (default bench-out/) and the plots into docs/figures/.
set -euo pipefail
out=${1:-bench-out}
subset="$out/subset"
rm -rf "$subset"
for genre in prose docs code changelog chinese; do
    f=$(ls data/corpus/valid/"$genre"/*.txt | head -n 1)
    mkdir -p "$subset/$genre"
    head -c 40000 "$f" > "$subset/$genre/$(basename "$f")"
done
OPENBLAS_NUM_THREADS=1 lmpress bench "$subset" --lmpress-levels 1,6,9 \
    --json "$out/bench.json" --csv "$out/bench.csv" --markdown "$out/bench.md" \
    --plots docs/figures
