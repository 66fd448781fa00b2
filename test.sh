#!/usr/bin/env bash
# usage: [GPUS=N] sh test.sh DATASET EXP [key value ...]
#   e.g. sh test.sh pascal split0_resnet50 shot 5 seeds 5
#        GPUS=4 sh test.sh pascal split0_resnet50        # episodes split over 4 processes
#        sh test.sh pascal split0_resnet50 target deepglobe   # cross-domain (docs/cross_domain.md)
# Tests exp/DATASET/EXP[_Kshot]/model/best.pth (or `weight FILE`) with the fixed episodes;
# any GPUS gives the same numbers (per-process counts are summed).
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
set -euo pipefail
cd "$(dirname "$0")"
source scripts/common.sh
resolve "$@"
shift 2
# test.py writes its log (result/test_shot<K>.log) into the run's folder (or `save_path`).
launch test.py --config "$CONFIG" "$@"
