#!/usr/bin/env bash
# The GPU side of the codec, for a session lent the device tool (docs/BENCHMARKS.md):
#
#   bash benchmarks/gpu_codec.sh SECONDS FILE:THREADS...
#
# compresses and decompresses each FILE (with -T THREADS) at the default level (or
# LMPRESS_GPU_LEVEL) with --backend torch-cuda,
# timing both directions (whole commands, start-up included), checks each decode against
# its input, and leaves in $OUT the log and the archives, so that `cmp` here shows they
# are the bytes the CPU makes. Stops starting new work once SECONDS have passed.
# LMPRESS_GPU_BACKEND=torch-cpu runs the same steps on a CPU (a smoke test);
# LMPRESS_GPU_LEVEL=9 (say) codes at another level than the default 6.
set -uo pipefail
budget=${1:?seconds}
shift
out=${OUT:?OUT: the folder whose files come back}
backend=${LMPRESS_GPU_BACKEND:-torch-cuda}
level=${LMPRESS_GPU_LEVEL:-6}
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
log="$out/gpu_codec.log"
end=$((SECONDS + budget))
(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true) >>"$log"
python3 -c "import torch, numba, numpy; print('torch', torch.__version__, 'numba', \
numba.__version__, 'numpy', numpy.__version__)" >>"$log" 2>&1

timed() {  # timed LABEL SECONDS_LEFT CMD...: run CMD, log its wall time and status
    local label=$1 left=$2 t0 rc
    shift 2
    t0=$(date +%s.%N)
    timeout "$left" "$@"
    rc=$?
    echo "$label rc=$rc wall_s=$(awk "BEGIN {print $(date +%s.%N) - $t0}")" >>"$log"
    return $rc
}

for spec in "$@"; do
    f=${spec%:*} threads=${spec##*:}
    name=$(basename "$f")
    left=$((end - SECONDS))
    if ((left < 15)); then
        echo "budget spent before $spec" >>"$log"
        break
    fi
    arc="$out/$name.lmp"
    timed "$name $(stat -c %s "$f") B compress -$level -T $threads" "$left" \
        python3 -m lmpress "-$level" -T "$threads" --backend "$backend" -v -c "$f" \
        >"$arc" 2>>"$log" || continue
    left=$((end - SECONDS))
    timed "$name $(stat -c %s "$arc") B decompress -T $threads" "$((left > 1 ? left : 1))" \
        python3 -m lmpress -d -T "$threads" --backend "$backend" -c "$arc" \
        >"$out/decoded" 2>>"$log" && cmp "$out/decoded" "$f" >>"$log" 2>&1 \
        && echo "$name -T $threads round trip OK" >>"$log"
    rm -f "$out/decoded"
done
cat "$log"
