#!/usr/bin/env bash
# The paper's GPU experiments in a session that is lent a GPU machine (the `device` tool):
# issue 22's two commands, on JAX, since those machines hold JAX and PyTorch but no TensorFlow.
#
#   bash tools/gpu_session.sh prepare        # here, once: Keras's wheels and CIFAR-10 into .gpu/
#   # then, through the device tool, with carry [".gpu"] and timeout_s 600, one call each:
#   bash tools/gpu_session.sh table 11 8     # Table 11 in an 8-minute budget (about 9.5 min)
#   bash tools/gpu_session.sh latency        # Tables 15 and 18's latency rows (about 3 min)
#
# Both modes ran here on the CPU with the GPU machine's Python 3.12, JAX 0.11.2 and NumPy 2.5.2
# (its package list; Keras from .gpu/ as there): the README's "Reproducing the paper".
# REPRODUCE_ARGS and LATENCY_ARGS add arguments (a dry run on a CPU: PYTHON=.venv-jax/bin/python
# REPRODUCE_ARGS="--train_images=20 --test_images=10 --batch_size=10" ... table 11 0.05).
#
# What the machine lacks travels in .gpu/ (ignored by git, about 23 MB): the wheels of the Keras
# version tested here and of the two requirements of it the machine's image does not hold
# (namex, optree; for its Python 3.12), and the shared CIFAR-10 archive. The results files and
# the whole log are written to $OUT, so that they come back even when a call runs out of time.
set -euo pipefail
cd "$(dirname "$0")/.."
GPU_DIR=.gpu
PYTHON=${PYTHON:-python3}

prepare() {
    local keras_version
    keras_version=$(.venv/bin/python -c "import keras; print(keras.__version__)" 2>/dev/null \
        || echo 3.15.1)
    grep -qx "/$GPU_DIR/" .git/info/exclude 2>/dev/null || echo "/$GPU_DIR/" >>.git/info/exclude
    rm -rf "$GPU_DIR" && mkdir -p "$GPU_DIR/wheels" "$GPU_DIR/datasets"
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
        --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
        --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        -d "$GPU_DIR/wheels" "keras==$keras_version" namex optree
    cp ../shared/datasets/cifar10-jpeg.tgz "$GPU_DIR/datasets/"
    du -sh "$GPU_DIR"
}

setup() {  # on the GPU machine (PYTHON: its python3, which holds JAX)
    export PYTHONPATH="/tmp/site:$PWD" KERAS_BACKEND=jax PYTHONUNBUFFERED=1
    if ! "$PYTHON" -c "import keras" 2>/dev/null; then
        "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
            --upgrade --target /tmp/site "$GPU_DIR"/wheels/*.whl
    fi
    export GHOSTNET_SHARED_DIR="$PWD/$GPU_DIR" OUT="${OUT:-/tmp/gpu-session}"
    mkdir -p "$OUT"
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv >"$OUT/device.txt" \
        || echo "no nvidia-smi: not a GPU machine" >"$OUT/device.txt"
    cat "$OUT/device.txt"
}

case "${1:-}" in
    prepare) prepare ;;
    table)
        setup
        table=${2:-11} budget=${3:-8}
        "$PYTHON" -m benchmarks.reproduce_cifar --table="$table" --budget_minutes="$budget" \
            ${REPRODUCE_ARGS:-} --output="$OUT/reproduce_cifar_table$table.md" 2>&1 | tee "$OUT/table$table.log"
        ;;
    latency)
        setup
        "$PYTHON" -m benchmarks.gpu_latency ${LATENCY_ARGS:-} \
            --rows="${2:-regnetx_032,g_ghost_regnetx_032,resnet34,g_ghost_resnet34}" \
            --output="$OUT/gpu_latency.md" 2>&1 | tee "$OUT/latency.log"
        ;;
    *)
        echo "usage: bash tools/gpu_session.sh prepare | table [TABLE [BUDGET_MINUTES]] | latency [ROWS]" >&2
        exit 2
        ;;
esac
