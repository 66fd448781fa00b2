#!/usr/bin/env bash
# usage: [GPUS=N] sh train.sh DATASET EXP [key value ...]
#   e.g. sh train.sh pascal split0_resnet50 shot 5 base_lr 0.0025
#        GPUS=4 sh train.sh pascal split0_resnet50       # 4 processes (torchrun --nproc_per_node 4)
# Reads config/DATASET/DATASET_EXP.yaml, writes exp/DATASET/EXP[_Kshot]/{model,result,tb}.
# GPUS=N starts N processes on this machine (one GPU each; with `device cpu`, N gloo CPU
# processes); add NNODES, NODE_RANK, MASTER_ADDR (and MASTER_PORT) for several machines.
# batch_size stays the total over all processes.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
set -euo pipefail
cd "$(dirname "$0")"
source scripts/common.sh
resolve "$@"
shift 2
# train.py writes the effective config and the log (result/config.yaml, result/train.log) into the
# run's folder: exp/DATASET/EXP[_Kshot], or `save_path` when the config or the command line sets one.
launch train.py --config "$CONFIG" "$@"
