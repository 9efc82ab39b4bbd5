#!/usr/bin/env bash
# The whole pipeline at scale on one machine, each step timed: synthetic BraTS 2021 cases ->
# check -> split -> preprocess -> the loader from a cold cache -> training fed by the loader ->
# predict and evaluate the test cases. Runs on a CPU too (slowly); docs/gpu.md has the figures.
#
#   bash benchmarks/gpu_rehearsal.sh WORK_DIR [CASES=1251] [WORKERS=nproc] [EPOCHS=2]
#
# EPOCHS=0 stops after the loader (a CPU-only machine). Reruns skip the cases already written.
# Lines starting with "TIME" give each step's wall seconds; bench_cache.py prints JSON lines.
set -euo pipefail
work=${1:?usage: gpu_rehearsal.sh WORK_DIR [CASES] [WORKERS] [EPOCHS]}
cases=${2:-1251}
workers=${3:-$(nproc)}
epochs=${4:-2}
here=$(cd "$(dirname "$0")" && pwd)
brats() { python -m brats_utils "$@"; }
timed() {  # timed NAME COMMAND...: run it and print its wall seconds
    local name=$1 start=$SECONDS
    shift
    "$@"
    echo "TIME $name $((SECONDS - start)) s"
}
mkdir -p "$work"
timed synth brats synth --out "$work/data" --cases "$cases" --workers "$workers" --no-progress
echo "SIZE data $(du -sb "$work/data" | cut -f1) bytes"
timed check brats check "$work/data" --workers "$workers" --quiet
timed split brats split "$work/data"
timed preprocess brats preprocess "$work/data" --out "$work/cache" --workers "$workers" --quiet
echo "SIZE cache $(du -sb "$work/cache" | cut -f1) bytes"
timed loader python "$here/bench_cache.py" "$work/cache" --split "$work/data/split.csv" \
    --cold --workers 1 4 "$workers"
[ "$epochs" -gt 0 ] || exit 0
timed train brats train --experiment early2 --cache "$work/cache" --out "$work/run" \
    --epochs "$epochs" --workers "$workers" > "$work/train.log" 2>&1
tail -n 3 "$work/train.log"
awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == "seconds") c = i }
         NR > 1 { print "EPOCH", $1, $c, "s" }' "$work/run/history.csv"
split_csv=("--split" "$work/data/split.csv" "--subset" "test")
timed predict brats predict --model "$work/run" --input "$work/data" --out "$work/pred" \
    "${split_csv[@]}"
timed evaluate brats evaluate --pred "$work/pred" --ref "$work/data" --out "$work/scores.csv" \
    "${split_csv[@]}"
