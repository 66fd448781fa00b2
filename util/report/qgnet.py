"""QGNet in the report: which runs carry the prior region map, their row names, and the published
rows they compare with (QGNet's Tables I and III; Tables V-VI for runs that differ only in their
prior extractor's pre-training: patches, epochs, contrastive terms). util/report/tables.py lays
the tables out."""
from __future__ import annotations

from util.report import paper
from util.report.load import Variant

PRIOR_KEYS = ("prior_patches", "prior_epochs", "prior_global", "prior_local")


def has_prior(v: Variant) -> bool:
    """The run uses QGNet's prior region map (model qgnet, or qgnet_prior on another method)."""
    return bool(v.get("qgnet_prior"))


def pretraining(v: Variant) -> tuple:
    """(prior_patches, prior_epochs, prior_global, prior_local) of a run with the prior map."""
    return tuple(v.get(k) for k in PRIOR_KEYS)


def published_pretraining(dataset: str, v: Variant) -> bool:
    """The pre-training of the paper's main tables: SLIC, both terms, its epochs for the dataset."""
    return pretraining(v) == ("slic", paper.QGNET_PRIOR_EPOCHS.get(dataset), True, True)


def in_main_table(dataset: str, v: Variant) -> bool:
    """Runs without the prior map, and prior-map runs with the published pre-training."""
    return not has_prior(v) or published_pretraining(dataset, v)


def row_kind(v: Variant, modules_full: str) -> str:
    """'QGNet' (the PFENet network + prior map) or '<NTRENet modules> + QGNet prior'."""
    if v.modules == "baseline":
        return "QGNet"
    return ("NTRENet" if v.modules == modules_full else v.modules) + " + QGNet prior"


def reference(dataset: str, v: Variant) -> dict:
    """QGNet's published rows for QGNet itself; none for NTRENet with the prior channel."""
    return paper.QGNET if v.modules == "baseline" and published_pretraining(dataset, v) else {}


def pretraining_label(v: Variant) -> str:
    patches, epochs, use_global, use_local = pretraining(v)
    terms = "+".join(t for t, on in (("local", use_local), ("global", use_global)) if on)
    return f"{patches} {epochs} ep, {terms}"


def pretraining_reference(setting: tuple, v: Variant) -> tuple | None:
    """(folds, mean, None) of Tables V-VI for this pre-training, on the paper's setting only."""
    row = paper.QGNET_PRIOR_ABLATION.get(pretraining(v)) if setting == paper.QGNET_PRIOR_SETTING else None
    return (row.folds, row.mean, None) if row else None
