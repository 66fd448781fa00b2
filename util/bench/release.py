"""The released NTRENet code, loaded from a user's checkout for side-by-side measurements.

The release does not run on a CPU as published. `load_release(DIR)` reads its model files,
applies in memory the few edits it needs (each one listed in `EDITS` and reported by the
compare command; nothing on disk changes) and executes them as private modules: the
release's package is also called `model`, so its imports are bound to the modules loaded
here instead. An edit whose text is not found stops with a message naming the file, so a
different revision of the release is never measured half-edited.
"""
from __future__ import annotations

import contextlib
import io
import os
import types
from dataclasses import dataclass

from util.errors import UserError

RELEASE_URL = "https://github.com/LIUYUANWEI98/NERTNet"
# The text removed from the release's files so that it runs on the CPU (its hard-coded device transfers).
RELEASE_CUDA_CALL = ".cuda" + "()"
FILES = {"resnet": "model/base/resnet.py", "vgg": "model/base/vgg.py",
         "contrast": "model/prototypical_contrast.py", "ourmodel": "model/ourmodel.py"}


@dataclass(frozen=True)
class Edit:
    """Replace `old` by `new` in `file`, exactly `count` times (0: every occurrence, at least one)."""
    file: str
    why: str
    old: str
    new: str
    count: int = 1

    def apply(self, text: str) -> tuple[str, int]:
        found = text.count(self.old)
        if found == 0 or (self.count and found != self.count):
            raise UserError(f"{self.file} of the reference checkout does not have the text this edit expects "
                            f"({self.why}: {self.old.strip()!r} found {found} times, expected "
                            f"{self.count or 'at least 1'}): use a checkout of {RELEASE_URL} at its published "
                            "revision")
        return text.replace(self.old, self.new), found


EDITS = (
    Edit(FILES["ourmodel"], "syntax error: a full-width comma in NTRENet.__init__'s signature",
         "vgg=False，bgpro_num", "vgg=False, bgpro_num"),
    Edit(FILES["ourmodel"], "import of the release's package `model` (this project's package has that name): "
         "bound to the release's resnet.py loaded here", "import model.base.resnet as models\n", ""),
    Edit(FILES["ourmodel"], "import of the release's package `model`: bound to the release's vgg.py loaded here",
         "import model.base.vgg as vgg_models\n", ""),
    Edit(FILES["ourmodel"], "import of the release's package `model`: bound to the release's "
         "prototypical_contrast.py loaded here",
         "from model.prototypical_contrast import PrototypeContrastLoss\n", ""),
    Edit(FILES["ourmodel"], "CUDA transfer calls in the training losses (the tensors stay on the input's device)",
         RELEASE_CUDA_CALL, "", count=0),
    Edit(FILES["ourmodel"], "undefined name `aux_bg_loss` in the training BG loss: initialised to 0",
         "            for j,supp_bg_out in enumerate(supp_bg_out_list):",
         "            aux_bg_loss = 0\n            for j,supp_bg_out in enumerate(supp_bg_out_list):"),
    Edit(FILES["contrast"], "CUDA transfer calls in the contrastive loss", RELEASE_CUDA_CALL, "", count=0),
)


def _module(name: str, path: str, text: str, bound: dict) -> types.ModuleType:
    mod = types.ModuleType(f"nertnet_release.{name}")
    mod.__file__ = path
    mod.__dict__.update(bound)
    with contextlib.redirect_stdout(io.StringIO()):
        exec(compile(text, path, "exec"), mod.__dict__)  # noqa: S102 - the user's own checkout, read to measure it
    return mod


def load_release(root: str) -> tuple[type, list[str]]:
    """The release's NTRENet class from checkout `root`, and one line per edit applied."""
    texts = {}
    for name, rel in FILES.items():
        path = os.path.join(root, rel)
        if not os.path.isfile(path):
            raise UserError(f"--reference {root}: {rel} not found; point --reference at a checkout of "
                            f"{RELEASE_URL} (the folder that holds model/ourmodel.py)")
        with open(path, encoding="utf-8") as f:
            texts[name] = f.read()
    applied = []
    for edit in EDITS:
        name = next(n for n, r in FILES.items() if r == edit.file)
        texts[name], n = edit.apply(texts[name])
        applied.append(f"{edit.file}: {edit.why} ({n} place{'s' if n > 1 else ''})")
    resnet = _module("resnet", os.path.join(root, FILES["resnet"]), texts["resnet"], {})
    vgg = _module("vgg", os.path.join(root, FILES["vgg"]), texts["vgg"], {})
    contrast = _module("contrast", os.path.join(root, FILES["contrast"]), texts["contrast"], {})
    ours = _module("ourmodel", os.path.join(root, FILES["ourmodel"]), texts["ourmodel"],
                   {"models": resnet, "vgg_models": vgg, "PrototypeContrastLoss": contrast.PrototypeContrastLoss})
    return ours.NTRENet, applied


def build_release(cls: type, cfg):
    """The release's model for the config's backbone, shot and bins (its prints are swallowed)."""
    layers = 101 if cfg.backbone == "resnet101" else 50
    with contextlib.redirect_stdout(io.StringIO()):
        return cls(layers=layers, classes=2, zoom_factor=cfg.zoom_factor, pretrained=False, shot=cfg.shot,
                   ppm_scales=list(cfg.ppm_scales), vgg=cfg.backbone == "vgg", bgpro_num=cfg.bg_dim // cfg.reduce_dim)
