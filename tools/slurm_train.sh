#!/usr/bin/env bash
# Training on a SLURM cluster with srun (MMDetection v2's tools/slurm_train.sh).
#
#   tools/slurm_train.sh PARTITION JOB_NAME CONFIG WORK_DIR [train args ...]
#
# Environment: GPUS (8 tasks in all), GPUS_PER_NODE (GPUS, at most 8), CPUS_PER_TASK (5),
# SRUN_ARGS (extra srun options, split on spaces), PYTHON (python). Each task reads
# SLURM_PROCID, SLURM_NTASKS and SLURM_NODELIST (--launcher slurm); the master is the first
# node, port MASTER_PORT or PORT (29500).
set -euo pipefail

if [ "$#" -lt 4 ]; then
    echo "usage: $0 PARTITION JOB_NAME CONFIG WORK_DIR [train args ...]" >&2
    exit 2
fi
PARTITION=$1
JOB_NAME=$2
CONFIG=$3
WORK_DIR=$4
GPUS=${GPUS:-8}
GPUS_PER_NODE=${GPUS_PER_NODE:-$((GPUS < 8 ? GPUS : 8))}
CPUS_PER_TASK=${CPUS_PER_TASK:-5}
PYTHON=${PYTHON:-python}
read -r -a EXTRA_SRUN <<< "${SRUN_ARGS:-}"
TOOLS=$(cd "$(dirname "$0")" && pwd)
export PYTHONPATH="$TOOLS/..${PYTHONPATH:+:$PYTHONPATH}"

exec srun -p "$PARTITION" --job-name="$JOB_NAME" \
    --gres=gpu:"$GPUS_PER_NODE" --ntasks="$GPUS" --ntasks-per-node="$GPUS_PER_NODE" \
    --cpus-per-task="$CPUS_PER_TASK" --kill-on-bad-exit=1 \
    ${EXTRA_SRUN[@]+"${EXTRA_SRUN[@]}"} \
    "$PYTHON" -u "$TOOLS/train.py" "$CONFIG" --work-dir="$WORK_DIR" --launcher=slurm "${@:5}"
