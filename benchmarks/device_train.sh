#!/usr/bin/env bash
# Train a recipe on a GPU machine in one sitting (docs/TRAINING.md, "On a GPU").
#
#   bash benchmarks/device_train.sh pack RECIPE
#       here, with the corpus: tokenize the recipe's training sample into runs/RECIPE/
#       and pack it into .pack/RECIPE/ (tokens xz-compressed, about a third of their
#       size; .pack/ is ignored by git, so the device tool must carry it).
#   bash benchmarks/device_train.sh run RECIPE MINUTES
#       there (device tool: carry [".pack"]): unpack, train for MINUTES on cuda with
#       bf16 autocast, export the integer model, and leave in $OUT the training log and
#       the model in parts of 15 MB (the tool returns files of at most 16 MB).
#       LMPRESS_TRAIN_DEVICE=cpu runs the same steps on a CPU (a smoke test).
#   bash benchmarks/device_train.sh join RECIPE DIR
#       here: join the parts found in DIR into src/lmpress/models/lmpress-RECIPE.safetensors
#       and print its sha256 (record it in src/lmpress/model/shipped.py).
set -euo pipefail
mode=${1:?pack, run or join}
recipe=${2:?recipe name}
case $mode in
pack)
    python -m lmpress.train.recipe "$recipe" --prepare-only
    mkdir -p ".pack/$recipe"
    cp "runs/$recipe/tokenizer.json" "runs/$recipe/data.json" ".pack/$recipe/"
    xz -6 -T0 -c "runs/$recipe/tokens.npy" > ".pack/$recipe/tokens.npy.xz"
    grep -qx '/.pack/' .git/info/exclude 2>/dev/null || echo '/.pack/' >> .git/info/exclude
    du -sh ".pack/$recipe"
    ;;
run)
    minutes=${3:?minutes of training}
    out=${OUT:?OUT: the folder whose files come back}
    export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
    mkdir -p "runs/$recipe"
    cp ".pack/$recipe/tokenizer.json" ".pack/$recipe/data.json" "runs/$recipe/"
    python3 -c "import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), \
open(sys.argv[2], 'wb'), 1 << 24)" ".pack/$recipe/tokens.npy.xz" "runs/$recipe/tokens.npy"
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
    echo "usage: device_train.sh pack|run|join RECIPE [MINUTES|DIR]" >&2
    exit 2
    ;;
esac
