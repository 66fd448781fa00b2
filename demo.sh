#!/usr/bin/env bash
# `make demo`: toy benchmark (generated on first use) -> train NTRENet on the CPU -> test.
set -euo pipefail
cd "$(dirname "$0")"
PY=${1:-.venv/bin/python}
CFG=config/toy/toy_split0_vgg.yaml
OUT=exp/toy/demo
if [ -e "$OUT" ]; then  # keep the previous demo: renamed after the time of its last change
  KEPT=${OUT}_$(date -u -r "$OUT" +%Y%m%d-%H%M%S)
  while [ -e "$KEPT" ]; do KEPT=${KEPT}x; done
  mv "$OUT" "$KEPT"
  echo "previous demo results moved to $KEPT (make clean-demo removes every demo folder)"
fi
$PY train.py --config "$CFG" save_path "$OUT" device cpu
$PY test.py --config "$CFG" save_path "$OUT" device cpu baselines true vis 4
echo
echo "Demo results ($OUT/model/results_shot1.md):"
cat "$OUT/model/results_shot1.md"
echo
echo "Results page (tables, class IoU bars, curves, these test episodes): $PY -m util.report exp/toy --html exp/toy/results.html"
