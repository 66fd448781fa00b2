#!/usr/bin/env bash
# usage: sh test.sh DATASET EXP [key value ...]
#   e.g. sh test.sh pascal split0_resnet50 shot 5 seeds 5
# Tests exp/DATASET/EXP[_Kshot]/model/best.pth (or `weight FILE`) with the fixed episodes.
set -euo pipefail
cd "$(dirname "$0")"
source scripts/common.sh
resolve "$@"
shift 2
mkdir -p "$EXP_DIR/result"
$PY test.py --config "$CONFIG" "$@" 2>&1 | tee -a "$EXP_DIR/result/test.sh.log"
