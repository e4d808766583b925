#!/usr/bin/env bash
# Train a recipe on a GPU machine in one sitting (docs/TRAINING.md, "On a GPU").
#
#   bash benchmarks/device_train.sh pack RECIPE [PART_MB]
#       here, with the corpus: tokenize the recipe's training sample into runs/RECIPE/
#       and pack it into .pack/RECIPE/ (tokens xz-compressed, about a third of their
#       size; .pack*/ is ignored by git, so the device tool must carry it). A pack larger
#       than PART_MB (default 25: the device tool's 64 MiB less the 38 MB working tree)
#       is split: part 0 in .pack/RECIPE/, part k in .pack.k/RECIPE/, one carry each.
#   device tool, one call per part, back to back on the same warm machine (it keeps
#   what earlier calls carried): run(command="bash benchmarks/device_train.sh parts
#       RECIPE || true", carry=[".pack"]), then the same with ".pack.1", ... and the
#       last part's call runs instead:
#   bash benchmarks/device_train.sh run RECIPE MINUTES
#       there (device tool: carry the last part): check that every part is there (by the
#       sha256 list written by pack), unpack, train for MINUTES on cuda with bf16
#       autocast, export the integer model, and leave in $OUT the training log and
#       the model in parts of 15 MB (the tool returns files of at most 16 MB).
#       LMPRESS_TRAIN_DEVICE=cpu runs the same steps on a CPU (a smoke test).
#   bash benchmarks/device_train.sh parts RECIPE
#       either side: which parts of the pack are here, and which are missing.
#   bash benchmarks/device_train.sh join RECIPE DIR
#       here: join the parts found in DIR into src/lmpress/models/lmpress-RECIPE.safetensors
#       and print its sha256 (record it in src/lmpress/model/shipped.py).
set -euo pipefail
mode=${1:?pack, run or join}
recipe=${2:?recipe name}
part_path() {  # where a part of the pack lies here: .pack or a .pack.K folder, or nothing
    ls .pack/"$recipe/$1" .pack.*/"$recipe/$1" 2>/dev/null | head -1 || true
}
case $mode in
pack)
    part_mb=${3:-25}
    python -m lmpress.train.recipe "$recipe" --prepare-only
    rm -rf ".pack/$recipe" .pack.*/"$recipe"
    mkdir -p ".pack/$recipe"
    cp "runs/$recipe/tokenizer.json" "runs/$recipe/data.json" ".pack/$recipe/"
    xz -6 -T0 -c "runs/$recipe/tokens.npy" | split -b "${part_mb}M" -d -a 2 - \
        ".pack/$recipe/tokens.npy.xz.part"
    (cd ".pack/$recipe" && sha256sum tokens.npy.xz.part* > parts.sha256)
    for part in ".pack/$recipe"/tokens.npy.xz.part*; do
        k=$((10#${part##*.part}))
        if [ "$k" -gt 0 ]; then mkdir -p ".pack.$k/$recipe" && mv "$part" ".pack.$k/$recipe/"; fi
    done
    grep -qx '/.pack\*/' .git/info/exclude 2>/dev/null || echo '/.pack*/' >> .git/info/exclude
    du -sh .pack .pack.* 2>/dev/null || true
    ;;
parts)
    missing=0
    while read -r sum name; do
        found=$(part_path "$name")
        if [ -n "$found" ] && echo "$sum  $found" | sha256sum -c --quiet - 2>/dev/null; then
            echo "have $found"
        else
            echo "missing $name"; missing=1
        fi
    done < ".pack/$recipe/parts.sha256"
    exit $missing
    ;;
run)
    minutes=${3:?minutes of training}
    out=${OUT:?OUT: the folder whose files come back}
    export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
    mkdir -p "runs/$recipe"
    cp ".pack/$recipe/tokenizer.json" ".pack/$recipe/data.json" "runs/$recipe/"
    bash "$0" parts "$recipe"  # every part there and intact, else stop here
    cat $(for name in $(awk '{print $2}' ".pack/$recipe/parts.sha256"); do
              part_path "$name"; done) \
        | python3 -c "import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.stdin.buffer), \
open(sys.argv[1], 'wb'), 1 << 24)" "runs/$recipe/tokens.npy"
    (nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true) | tee "$out/train.log"
    python3 -m lmpress.train.recipe "$recipe" --device "${LMPRESS_TRAIN_DEVICE:-cuda}" \
        --minutes "$minutes" --export "runs/$recipe/export" 2>&1 | tee -a "$out/train.log"
    split -b 15M -d "runs/$recipe/export/lmpress-$recipe.safetensors" \
        "$out/lmpress-$recipe.safetensors.part"
    ls -l "$out"
    ;;
join)
    dir=${3:?folder holding the parts}
    target="src/lmpress/models/lmpress-$recipe.safetensors"
    cat "$dir/lmpress-$recipe.safetensors.part"* > "$target"
    sha256sum "$target"
    ;;
*)
    echo "usage: device_train.sh pack|parts|run|join RECIPE [PART_MB|MINUTES|DIR]" >&2
    exit 2
    ;;
esac
