"""The `python -m util.prepare` subcommands of the cross-domain targets (fss1000, deepglobe,
isic, chestxray, suim): their arguments and dispatch, one place for all five."""
from __future__ import annotations

import argparse
from pathlib import Path

TARGETS = {
    "fss1000": "FSS-1000 test classes (fewshot_data/<class>/<n>.jpg|png) -> class maps + lists/fss1000",
    "deepglobe": "Deepglobe land cover (train/<id>_sat.jpg, <id>_mask.png) -> 6x6 tiles + lists/deepglobe",
    "isic": "ISIC 2018 task 1 + class_id.csv -> class maps + lists/isic",
    "chestxray": "Chest X-ray lung masks (CXR_png/, masks/) -> class maps + lists/chestxray",
    "suim": "SUIM (images/, masks/ colour codes) -> class maps + lists/suim",
}
BINARY = ("fss1000", "isic", "chestxray")  # binary-mask sources: --binarise applies


def add_target_parsers(sub, repo_root: Path, workers: dict) -> None:
    """One subcommand per target: --src (the download), --out (the data_root), --lists."""
    for name, text in TARGETS.items():
        p = sub.add_parser(name, help=text)
        p.add_argument("--src", type=Path, required=True, help="the downloaded folder (docs/cross_domain.md)")
        p.add_argument("--out", type=Path, required=True, help="data root to write (may be --src itself)")
        p.add_argument("--lists", type=Path, default=repo_root / "lists" / name, help="where test.txt goes")
        p.add_argument("--workers", **workers)
        if name == "isic":
            p.add_argument("--classes", type=Path, required=True, help="class_id.csv: 'ID,Class' per image")
        p.add_argument("--skip-bad", action="store_true",
                       help="leave out (and name) every pair whose mask cannot label its image, such as "
                            "FSS-1000's photo saved in place of a mask, instead of stopping")
        if name in BINARY:
            p.add_argument("--binarise", action="store_true",
                           help="threshold masks at 128 instead of refusing grey values other than 0/255")


def prepare_target(args: argparse.Namespace) -> dict[str, int]:
    """Run the target's preparation module (imported on demand)."""
    common = dict(workers=args.workers, skip_bad=args.skip_bad)
    if args.dataset in BINARY:
        common["binarise"] = args.binarise
    if args.dataset == "fss1000":
        from util.prepare.fss1000 import prepare_fss1000
        return prepare_fss1000(args.src, args.out, args.lists, **common)
    if args.dataset == "deepglobe":
        from util.prepare.deepglobe import prepare_deepglobe
        return prepare_deepglobe(args.src, args.out, args.lists, **common)
    if args.dataset == "isic":
        from util.prepare.isic import prepare_isic
        return prepare_isic(args.src, args.classes, args.out, args.lists, **common)
    if args.dataset == "chestxray":
        from util.prepare.chestxray import prepare_chestxray
        return prepare_chestxray(args.src, args.out, args.lists, **common)
    from util.prepare.suim import prepare_suim
    return prepare_suim(args.src, args.out, args.lists, **common)
