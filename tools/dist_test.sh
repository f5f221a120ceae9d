#!/usr/bin/env bash
# Distributed testing with torchrun, one process per GPU (MMDetection v2's tools/dist_test.sh).
#
#   tools/dist_test.sh CONFIG CHECKPOINT GPUS [test args ...]
#
# Every process tests its share of the images; rank 0 gathers them in dataset order
# (all_gather, or pickles in a shared folder with --tmpdir DIR) and writes --out / --eval.
# Environment: NNODES (1), NODE_RANK (0), MASTER_ADDR (127.0.0.1), PORT or MASTER_PORT
# (29500), CUDA_VISIBLE_DEVICES, PYTHON (python). On CPU add `--device cpu` (gloo).
set -euo pipefail

if [ "$#" -lt 3 ]; then
    echo "usage: $0 CONFIG CHECKPOINT GPUS [test args ...]" >&2
    exit 2
fi
CONFIG=$1
CHECKPOINT=$2
GPUS=$3
case "$GPUS" in
    '' | *[!0-9]* | 0) echo "$0: GPUS must be a positive number, got '$GPUS'" >&2; exit 2 ;;
esac
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
MASTER_ADDR=${MASTER_ADDR:-127.0.0.1}
PORT=${PORT:-${MASTER_PORT:-29500}}
PYTHON=${PYTHON:-python}
TOOLS=$(cd "$(dirname "$0")" && pwd)
export PYTHONPATH="$TOOLS/..${PYTHONPATH:+:$PYTHONPATH}"

exec "$PYTHON" -m torch.distributed.run \
    --nnodes="$NNODES" --node_rank="$NODE_RANK" --master_addr="$MASTER_ADDR" \
    --nproc_per_node="$GPUS" --master_port="$PORT" \
    "$TOOLS/test.py" "$CONFIG" "$CHECKPOINT" --launcher pytorch "${@:4}"
