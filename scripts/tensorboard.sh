#!/usr/bin/env bash
# usage: bash scripts/tensorboard.sh TENSORBOARD [FOLDER] [tensorboard options ...]
# Serves every run under FOLDER (default exp) named by its folder (pascal/split0_resnet50),
# not by its events folder (pascal/split0_resnet50/tb).
set -euo pipefail
TB=$1
ROOT=${2:-exp}
shift $(( $# > 1 ? 2 : 1 ))
if [ ! -d "$ROOT" ]; then
  echo "error: no folder $ROOT: train a run first (e.g. make demo), or name the folder: make tensorboard LOGDIR=exp/pascal" >&2
  exit 2
fi
spec=""
while IFS= read -r dir; do
  run=${dir%/tb}
  name=${run#"$ROOT"/}
  [ "$name" = "$run" ] && name=$(basename "$run")
  spec="${spec:+$spec,}$name:$dir"
done < <(find "$ROOT" -type d -name tb | sort)
if [ -z "$spec" ]; then
  echo "error: no run with events (a tb/ folder) under $ROOT: train a run first (e.g. make demo)" >&2
  exit 2
fi
exec "$TB" --logdir_spec "$spec" "$@"
