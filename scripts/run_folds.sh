#!/usr/bin/env bash
# usage: sh scripts/run_folds.sh DATASET BACKBONE [key value ...]
#   e.g. sh scripts/run_folds.sh pascal resnet50 shot 5
# Trains and tests the four folds of one backbone and shot, then prints the paper table.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"  # `sh` is dash on Debian: no pipefail there
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -lt 2 ]; then
  echo "usage: sh scripts/run_folds.sh DATASET BACKBONE [key value ...]   (e.g. pascal resnet50)" >&2
  exit 2
fi
DATASET=$1
BACKBONE=$2
shift 2
for split in 0 1 2 3; do
  bash train.sh "$DATASET" "split${split}_${BACKBONE}" "$@"
  bash test.sh "$DATASET" "split${split}_${BACKBONE}" "$@"
done
source scripts/common.sh
$PY -m util.report "exp/$DATASET"
