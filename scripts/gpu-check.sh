#!/usr/bin/env bash
# One prepared run on a GPU machine: what the card and its drivers offer, this crate against
# PyTorch CUDA on it (whole steps and layer by layer, every precision), and d2l's recipe for 10
# epochs. Everything goes to one folder, $OUT/gpu-check (OUT defaults to ./gpu-check-out).
#
# The machine needs no registry and builds nothing: the binaries come built, from a machine
# with the toolchain, in one folder (BIN, default ./gpu-bin), with the Fashion-MNIST files:
#
#   scripts/gpu-check.sh --prepare            # here: builds and fills ./gpu-bin
#   scripts/gpu-check.sh                      # there: runs, within BUDGET seconds (480)
#
# ./gpu-bin then holds `perf` and `fashion_mnist` (release, --features wgpu,vulkan; xz-packed
# when xz is there) and fashion-mnist/ (the four .gz files). The run needs python3 with torch
# for PyTorch's side (PYTHON, default python3); without it the tables have no PyTorch columns.
#
# d2l's recipe gets the time that is left, stops cleanly (SIGINT) before the budget runs out,
# and says so; RESUME=DIR (a copy of the d2l-run folder an earlier run brought back) continues
# it with --resume. RECIPE_PRECISION (f32) and BACKEND (vulkan) choose how it trains.
set -uo pipefail
cd "$(dirname "$0")/.."

BIN=${BIN:-gpu-bin}
BUDGET=${BUDGET:-480}
BACKEND=${BACKEND:-vulkan}
PYTHON=${PYTHON:-python3}
RECIPE_PRECISION=${RECIPE_PRECISION:-f32}

if [ "${1:-}" = "--prepare" ]; then
    set -e
    cargo build --release --features wgpu,vulkan --example perf --example fashion_mnist
    target_dir=$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
    mkdir -p "$BIN/fashion-mnist"
    for example in perf fashion_mnist; do
        cp "$target_dir/release/examples/$example" "$BIN/$example"
        strip "$BIN/$example" 2>/dev/null || true
        if command -v xz >/dev/null; then
            xz -f -6 -T0 "$BIN/$example"
        fi
    done
    data=${NIN_DATA_DIR:-/usr/share/datasets/fashion-mnist}
    cp "$data"/*-ubyte.gz "$BIN/fashion-mnist/"
    du -sh "$BIN"
    exit 0
fi

started=$(date +%s)
left() { echo $((BUDGET - ($(date +%s) - started))); }
out="${OUT:-gpu-check-out}/gpu-check"
mkdir -p "$out"
log="$out/run.log"
say() { echo "gpu-check: $* ($(date +%T), $(left) s left)" | tee -a "$log"; }

for example in perf fashion_mnist; do
    if [ -f "$BIN/$example.xz" ] && [ ! -x "$BIN/$example" ]; then
        xz -dkc "$BIN/$example.xz" > "$out/$example" && chmod +x "$out/$example"
    elif [ -x "$BIN/$example" ]; then
        cp "$BIN/$example" "$out/$example"
    fi
    if [ ! -x "$out/$example" ]; then
        echo "gpu-check: $BIN has no $example; run scripts/gpu-check.sh --prepare where cargo is" >&2
        exit 1
    fi
done
perf="$out/perf"
fashion_mnist="$out/fashion_mnist"
# Vulkan's window-system layers complain on every start without a runtime directory.
if [ -z "${XDG_RUNTIME_DIR:-}" ] || [ ! -d "$XDG_RUNTIME_DIR" ]; then
    export XDG_RUNTIME_DIR="${TMPDIR:-/tmp}/nin-gpu-check"
    mkdir -p -m 700 "$XDG_RUNTIME_DIR"
fi
export NIN_OFFLINE=1
# Every process of the run shares the autotune results already found (cubecl's cache, under
# target/environment of this tree).
export CUBECL_AUTOTUNE_LEVEL=${CUBECL_AUTOTUNE_LEVEL:-balanced}
torch_args=(--python "$PYTHON" --torch-device cuda)
if ! "$PYTHON" -c 'import torch; assert torch.cuda.is_available()' 2>>"$log"; then
    say "no CUDA PyTorch through $PYTHON: the tables have no PyTorch columns"
    torch_args=(--no-pytorch)
fi

# Runs a step with at most $1 seconds (and never past the budget), its output in $out/$2.
step() {
    local seconds=$1 name=$2
    shift 2
    local remaining
    remaining=$(left)
    [ "$seconds" -gt "$remaining" ] && seconds=$remaining
    if [ "$seconds" -le 5 ]; then
        say "$name: skipped, the budget is spent"
        return 1
    fi
    say "$name: $* (at most $seconds s)"
    timeout -s INT -k 10 "$seconds" "$@" > "$out/$name" 2>&1
    local status=$?
    say "$name: exit status $status"
    return $status
}

say "probe"
{
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv || true
    "$PYTHON" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, torch.cuda.get_device_name(0))' || true
    if command -v vulkaninfo >/dev/null; then
        vulkaninfo --summary 2>/dev/null | grep -iE 'deviceName|driverVersion|apiVersion' || true
        vulkaninfo 2>/dev/null | grep -iE 'cooperative_matrix|cooperativeMatrix' | sort -u || true
    fi
} > "$out/probe.txt" 2>&1
for backend in wgpu vulkan; do
    echo "== --backend $backend" >> "$out/probe.txt"
    timeout 60 "$perf" --probe --backend "$backend" >> "$out/probe.txt" 2>&1
done
cat "$out/probe.txt" >> "$log"

# Whole steps, both presets, training and inference, each precision the card computes in,
# against PyTorch's like and its TF32 default.
precisions=f32
if grep -A4 -- "--backend $BACKEND" "$out/probe.txt" | grep -q 'float types:.*F16'; then
    precisions=f32,f16
fi
step 200 perf.md "$perf" --backend "$BACKEND" "${torch_args[@]}" --precision "$precisions" \
    --d2l-batch 128 --steps 10 --warmup 3

# Layer by layer, with burn's autotune decisions logged.
for precision in ${precisions//,/ }; do
    CUBECL_DEBUG_LOG="$out/cubecl-layers-$precision.log" \
        step 90 "layers-$precision.md" "$perf" --backend "$BACKEND" --layers "${torch_args[@]}" \
        --precision "$precision" --d2l-batch 128 --steps 10
done
for file in "$out"/cubecl-layers-*.log; do
    [ -f "$file" ] && grep -h 'Fastest result' "$file" > "${file%.log}-picks.txt"
done

# d2l's recipe with what is left, stopped cleanly before the end.
recipe=(--preset d2l --backend "$BACKEND" --no-tui --precision "$RECIPE_PRECISION"
    --data-dir "$BIN/fashion-mnist" --artifact-dir "$out/d2l-run")
if [ -n "${RESUME:-}" ]; then
    cp -r "$RESUME" "$out/d2l-run"
    recipe+=(--resume)
fi
# A few seconds stay for the last lines of the log.
step $(($(left) - 15)) d2l-recipe.txt "$fashion_mnist" "${recipe[@]}"
status=$?
if [ "$status" -ne 0 ]; then
    say "d2l's recipe did not finish: bring back $out/d2l-run and run again with RESUME=<that folder>"
fi
nvidia-smi --query-gpu=name,utilization.gpu,memory.used --format=csv >> "$log" 2>&1 || true
rm -f "$perf" "$fashion_mnist"
say "done"
