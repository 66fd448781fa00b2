#!/usr/bin/env bash
# usage: sh train.sh DATASET EXP [key value ...]
#   e.g. sh train.sh pascal split0_resnet50 shot 5 base_lr 0.0025
# Reads config/DATASET/DATASET_EXP.yaml, writes exp/DATASET/EXP[_Kshot]/{model,result,tb}.
set -euo pipefail
cd "$(dirname "$0")"
source scripts/common.sh
resolve "$@"
shift 2
mkdir -p "$EXP_DIR/result"
cp "$CONFIG" "$EXP_DIR/result/"
$PY train.py --config "$CONFIG" "$@" 2>&1 | tee -a "$EXP_DIR/result/train.sh.log"
