#!/usr/bin/env bash
# Distributed training with torchrun, one process per GPU (MMDetection v2's tools/dist_train.sh).
#
#   tools/dist_train.sh CONFIG GPUS [train args ...]
#
# GPUS processes start on this node (on CPU they use gloo: add `--device cpu`). Environment:
#   NNODES (1), NODE_RANK (0), MASTER_ADDR (127.0.0.1) and PORT or MASTER_PORT (29500) for
#   multi-node jobs (run the same command on every node with its NODE_RANK);
#   CUDA_VISIBLE_DEVICES picks the GPUs; PYTHON (python) is the interpreter.
# The run gets `--seed 0 --launcher pytorch` before your arguments (a later --seed wins).
set -euo pipefail

if [ "$#" -lt 2 ]; then
    echo "usage: $0 CONFIG GPUS [train args ...]" >&2
    exit 2
fi
CONFIG=$1
GPUS=$2
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
    "$TOOLS/train.py" "$CONFIG" --seed 0 --launcher pytorch "${@:3}"
