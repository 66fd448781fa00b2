#!/usr/bin/env bash
# `make demo`: toy benchmark (generated on first use) -> train NTRENet on the CPU -> test.
set -euo pipefail
cd "$(dirname "$0")"
PY=${1:-.venv/bin/python}
CFG=config/toy/toy_split0_vgg.yaml
OUT=exp/toy/demo
rm -rf "$OUT"
$PY train.py --config "$CFG" save_path "$OUT" device cpu
$PY test.py --config "$CFG" save_path "$OUT" device cpu baselines true vis 4
echo
echo "Demo results ($OUT/model/results_shot1.md):"
cat "$OUT/model/results_shot1.md"
