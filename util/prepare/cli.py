"""Data preparation command: label PNGs, image links and lists of one benchmark's source.

    python -m util.prepare pascal --voc DIR --sbd DIR --out DIR [--lists lists/pascal]
                                  [--train-list FILE] [--workers N]
    python -m util.prepare coco --coco DIR --out DIR [--lists lists/coco] [--workers N]
    python -m util.prepare toy [--out data/toy] [--lists lists/toy] [--images N]
    python -m util.prepare fss1000|deepglobe|isic|chestxray|suim --src DIR --out DIR [...]

OUT becomes the `data_root` of the configs (docs/data.md). Each source is one module of
this package; they share only util/prepare/common.py.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import Sequence

from util.engine.cliargs import workers as workers_type
from util.errors import UserError

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]


def build_parser() -> argparse.ArgumentParser:
    from util.prepare.targets import add_target_parsers
    from util.prepare.toy import add_arguments

    parser = argparse.ArgumentParser(prog="python -m util.prepare", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="dataset", required=True)
    workers = dict(type=workers_type(), default=min(8, os.cpu_count() or 1),
                   help="parallel processes (default: min(8, CPUs))")
    pas = sub.add_parser("pascal", help="VOC2012 + SBD -> SegmentationClassAug + lists/pascal")
    pas.add_argument("--voc", type=Path, required=True, help="VOCdevkit/VOC2012")
    pas.add_argument("--sbd", type=Path, required=True, help="benchmark_RELEASE/dataset")
    pas.add_argument("--out", type=Path, required=True, help="data root to write (may be --voc itself)")
    pas.add_argument("--lists", type=Path, default=REPO_ROOT / "lists" / "pascal", help="where train.txt/val.txt go")
    pas.add_argument("--train-list", type=Path, default=None,
                     help="use this train list (e.g. PFENet's voc_sbd_merge_noduplicate.txt) instead of the computed one")
    pas.add_argument("--workers", **workers)
    coco = sub.add_parser("coco", help="COCO 2014 instances -> annotations/{train,val}2014 + lists/coco")
    coco.add_argument("--coco", type=Path, required=True, help="folder with train2014/, val2014/, annotations/")
    coco.add_argument("--out", type=Path, required=True, help="data root to write (may be --coco itself)")
    coco.add_argument("--lists", type=Path, default=REPO_ROOT / "lists" / "coco", help="where train.txt/val.txt go")
    coco.add_argument("--workers", **workers)
    add_arguments(sub.add_parser("toy", help="generate the deterministic toy benchmark (PASCAL layout)"))
    add_target_parsers(sub, REPO_ROOT, workers)  # cross-domain targets (docs/cross_domain.md)
    return parser


def prepare(args: argparse.Namespace) -> dict[str, int]:
    """Run the source module the subcommand names (imported on demand: COCO needs pycocotools),
    once the folders it writes are known to be writable folders (nothing is half written)."""
    from util.prepare.common import check_out_folder
    check_out_folder(args.out, "--out")
    if args.lists:
        check_out_folder(args.lists, "--lists")
    if args.dataset == "pascal":
        from util.prepare.pascal import prepare_pascal
        return prepare_pascal(args.voc, args.sbd, args.out, args.lists, train_list=args.train_list,
                              workers=args.workers)
    if args.dataset == "coco":
        from util.prepare.coco import prepare_coco
        return prepare_coco(args.coco, args.out, args.lists, workers=args.workers)
    if args.dataset != "toy":
        from util.prepare.targets import prepare_target
        return prepare_target(args)
    from util.prepare.toy import run
    return run(args)


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry: user mistakes print one `error:` line and exit with code 2."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        report = prepare(args)
    except UserError as err:
        sys.stderr.write(f"error: {err}\n")
        return 2
    log.info("done: %s", ", ".join(f"{k}={v}" for k, v in report.items()))
    log.info("use data_root %s with the lists in %s", Path(args.out).resolve(), args.lists)
    return 0
