"""This project against the released NTRENet in one process, interleaved: the measurements (the
command and what it reports: util/bench/cli.py, `python -m util.bench compare --help`)."""
from __future__ import annotations

import copy
import functools
import json
import os
import platform
import statistics
import subprocess
import sys
from typing import Callable

import torch
import yaml
from torch.utils.flop_counter import FlopCounterMode

from model import build_model
from model.checkpoints.convert import to_official
from util.bench.release import build_release, load_release
from util.bench.cli import compare_parser
from util.bench.speed import episode, eval_batch, matmul_gflops, timed, train_step
from util.config import load_config
from util.engine.precision import NATIVE_BF16_FLAGS, Precision, cpu_flags
from util.engine.runtime import resolve_device, seed_everything
from util.errors import UserError

SHOWN_FLAGS = ("avx2", "avx512f", "avx512_vnni", *NATIVE_BF16_FLAGS, "amx_tile", "amx_int8")


def _totals(counts: dict[str, dict]) -> dict[str, int]:
    return {k: sum(v.values()) for k, v in counts.items()}


def _group(name: str) -> str:
    return name.split(".")[1] if "." in name else "outside"


def exclusive_flops(counts: dict[str, dict]) -> dict[str, int]:
    """Forward FLOPs per top-level child of the model, each counted once, plus `outside` for
    work in no submodule (prior mask, pooling, resizes, losses). FlopCounterMode counts an op
    for every module it runs in; a module's own share is its count minus that of the modules
    nested directly in it (the nearest recorded ancestor: FEM's refine blocks run through
    FEM.step, so no FEM entry sits between them and the model). Forward passes only: in the
    backward pass the module tracker's ancestor sets are not reliable (see `leaf_flops`)."""
    total = _totals(counts)
    glob = total.pop("Global", 0)

    def parent(name: str) -> str | None:
        parts = name.split(".")
        for n in range(len(parts) - 1, 0, -1):
            if ".".join(parts[:n]) in total:
                return ".".join(parts[:n])
        return None

    own = dict(total)
    for name, flops in total.items():
        if parent(name) is not None:
            own[parent(name)] -= flops
    groups: dict[str, int] = {"outside": glob - sum(f for k, f in total.items() if parent(k) is None)}
    for name, flops in own.items():
        groups[_group(name)] = groups.get(_group(name), 0) + flops
    return groups


def leaf_flops(counts: dict[str, dict], leaves: set[str]) -> dict[str, int]:
    """FLOPs of ops run inside leaf modules (no children), per top-level child, plus `outside`.
    A leaf's entry is exact in both passes (in the backward pass the tracker can leave earlier
    modules in the ancestor set, which charged FEM's backward to FM and DOEM)."""
    total = _totals(counts)
    groups: dict[str, int] = {}
    for name, flops in total.items():
        if name.split(".", 1)[-1] in leaves and "." in name:
            groups[_group(name)] = groups.get(_group(name), 0) + flops
    groups["outside"] = total.get("Global", 0) - sum(groups.values())
    return groups


def count(fn: Callable[[], object]) -> tuple[int, dict[str, dict]]:
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops(), counter.get_flop_counts()


def flops_split(net: torch.nn.Module, forward: Callable[[], object], step: Callable[[], object]) -> dict:
    """FLOPs per module of one training step: forward (losses included; exact shares) and
    backward (step - forward, from leaf modules; `outside` holds the rest)."""
    leaves = {n for n, m in net.named_modules() if n and not any(True for _ in m.children())}
    fwd_counts, step_counts = count(forward)[1], count(step)[1]
    fwd = exclusive_flops(fwd_counts)
    back = {g: leaf_flops(step_counts, leaves).get(g, 0) - f for g, f in leaf_flops(fwd_counts, leaves).items()}
    names = sorted(set(fwd) | set(back), key=lambda g: (g == "outside", g))
    return {g: {"forward": fwd.get(g, 0), "backward": back.get(g, 0)} for g in names}


def frozen_count(net: torch.nn.Module, fn: Callable[[], object]) -> int:
    """FLOPs of an inference call: parameters frozen meanwhile (the module tracker behind
    FlopCounterMode fails on parameters that require grad inside no_grad)."""
    flags = [(p, p.requires_grad) for p in net.parameters()]
    net.requires_grad_(False)
    try:
        return count(fn)[0]
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)


def interleave(fns: dict[str, Callable[[], object]], rounds: int, warmup: int, device) -> dict[str, list[float]]:
    """Median-ready times: every round calls each function once, in turn (A B A B ...), the
    order rotated by one each round (A B C, B C A, ...): whichever runs right after another
    variant pays or gains from its cache and allocator state, and rotating spreads that."""
    times: dict[str, list[float]] = {k: [] for k in fns}
    names = list(fns)
    for r in range(warmup + rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            t = timed(fns[name], 1, device)[0]
            if r >= warmup:
                times[name].append(t)
    return times


def machine() -> dict:
    flags = cpu_flags()
    model = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            model = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), "")
    except OSError:
        pass
    return {"cpu": model or platform.processor(), "cpu_flags": {f: f in flags for f in SHOWN_FLAGS},
            "threads": torch.get_num_threads(), "torch": torch.__version__}


def _release_step(rel, opt, ep: dict, bank: dict) -> None:
    """The release's train.py step: forward with its losses, main + aux backward, SGD."""
    _, main, aux, _ = rel(ep["supports"], ep["support_masks"].float(), ep["query"], ep["query_mask"].float(),
                          [ep["classes"]], bank)
    opt.zero_grad(set_to_none=True)
    (main + aux).sum().backward()
    opt.step()


@torch.no_grad()
def _release_eval(rel, ep: dict) -> torch.Tensor:
    return rel(ep["supports"], ep["support_masks"].float(), ep["query"], ep["query_mask"].float(), None)


def _release_trains(steps: dict) -> dict:
    """Try the release's training step once; if its own code fails on this setting (at K > 1
    its PCL multiplies 256-channel features by a K-channel mask), time evaluation only and
    say why in the JSON rather than stopping the whole comparison."""
    try:
        steps["release"]()
    except RuntimeError as err:
        del steps["release"]
        return {"release_train_error": f"{type(err).__name__}: {err}"}
    return {}


def _as(ep: dict, precision: Precision) -> dict:
    """The episode with its query image in the precision's memory format."""
    return {**ep, "query": ep["query"].contiguous(memory_format=precision.memory_format)}


def _median(ts: list[float]) -> float:
    return round(statistics.median(ts), 4)


def parse_variant(spec: str) -> tuple[str, list[str]]:
    """`--variant "fast: cap_bins=true prior_foreground_only=true"` -> ("fast", [key, value, ...])."""
    name, _, pairs = spec.partition(":")
    opts: list[str] = []
    for pair in pairs.split():
        key, eq, value = pair.partition("=")
        if not eq or not name.strip():
            raise UserError(f"--variant {spec!r}: write it as 'NAME: key=value key=value ...'")
        opts += [key, value]
    return name.strip(), opts


def _variants(cfg, ours, specs: list[str], device, tr: dict, ev: dict) -> tuple[dict, dict]:
    """Eval and train callables of each `--variant` (config overrides on top of the run's),
    with our weights loaded: the options it times change FLOPs, not parameters."""
    evals, steps = {}, {}
    for spec in specs:
        name, opts = parse_variant(spec)
        vcfg = cfg.replace(**{k: yaml.safe_load(v) for k, v in zip(opts[::2], opts[1::2])})
        vp = Precision.from_config(vcfg, device)
        net = build_model(vcfg).to(device, memory_format=vp.memory_format)
        net.load_state_dict(ours.state_dict())
        opt = torch.optim.SGD([p for p in net.parameters() if p.requires_grad], lr=1e-3, momentum=0.9)
        evals[name] = (net, functools.partial(eval_batch, net, _as(ev, vp), vp))
        steps[name] = functools.partial(train_step, net, opt, _as(tr, vp), vp)
    return evals, steps


def run(cfg, reference: str | None, rounds: int, warmup: int, variants: list[str] = ()) -> dict:
    device = resolve_device(cfg.device)
    precision = Precision.from_config(cfg, device)
    load_before = [round(x, 2) for x in os.getloadavg()]
    seed_everything(cfg.manual_seed)
    ours = build_model(cfg).to(device, memory_format=precision.memory_format)
    tr = episode(cfg.batch_size, cfg.shot, cfg.train_h, device)
    ev = episode(cfg.batch_size_val, cfg.shot, cfg.val_size, device)
    ev["classes"] = torch.arange(cfg.batch_size_val, device=device) % 2
    out: dict = {"config": cfg.get("_config_path"), "size": cfg.train_h, "batch": cfg.batch_size,
                 "batch_size_val": cfg.batch_size_val, "shot": cfg.shot, "backbone": cfg.backbone,
                 "backbone_bn": cfg.backbone_bn, "amp": f"{precision.requested} -> {precision.amp}",
                 "rounds": rounds, **machine()}

    # The other memory format than the run's `channels_last` resolves to, as a second variant.
    alt = "ours_contiguous" if precision.channels_last else "ours_channels_last"
    alt_precision = Precision(device, precision.amp, not precision.channels_last)
    other = copy.deepcopy(ours).to(memory_format=alt_precision.memory_format).eval()
    evals = {"ours": functools.partial(eval_batch, ours, _as(ev, precision), precision),
             alt: functools.partial(eval_batch, other, _as(ev, alt_precision), alt_precision)}
    extra_evals, extra_steps = _variants(cfg, ours, list(variants), device, tr, ev)
    evals.update({k: fn for k, (_, fn) in extra_evals.items()})
    rel = None
    if reference:
        cls, edits = load_release(reference)
        out["reference"] = {"dir": os.path.abspath(reference), "edits_in_memory": edits}
        rel = build_release(cls, cfg).to(device)
        rel.load_state_dict(to_official(ours.state_dict(), module_prefix=False), strict=True)
        for name in ("layer0", "layer1", "layer2", "layer3", "layer4"):
            getattr(rel, name).requires_grad_(False)
        rel.eval()
        evals["release"] = functools.partial(_release_eval, rel, ev)

    for net in (ours, *(n for n, _ in extra_evals.values())):
        net.eval()
    logits = {k: fn() for k, fn in evals.items()}
    out["eval_logits_max_abs_diff"] = {f"{k} vs ours": float((v - logits["ours"]).abs().max())
                                       for k, v in logits.items() if k != "ours"}
    nets = {"ours": ours, "release": rel, **{k: net for k, (net, _) in extra_evals.items()}}
    out["gflop_per_eval_episode"] = {k: round(frozen_count(nets[k], evals[k]) / 1e9 / cfg.batch_size_val, 2)
                                     for k in evals if k in nets}
    eval_times = interleave(evals, rounds, warmup, device)

    for net in (ours, *(n for n, _ in extra_evals.values())):
        net.train()
    opt = torch.optim.SGD([p for p in ours.parameters() if p.requires_grad], lr=1e-3, momentum=0.9)
    steps = {"ours": functools.partial(train_step, ours, opt, _as(tr, precision), precision)}
    other.train()
    other_opt = torch.optim.SGD([p for p in other.parameters() if p.requires_grad], lr=1e-3, momentum=0.9)

    def ours_forward():
        with precision.autocast():
            ours(tr["query"], tr["supports"], tr["support_masks"], query_mask=tr["query_mask"], classes=tr["classes"])
    out["gflop_per_train_step_ours_by_module"] = {
        g: {k: round(v / 1e9, 2) for k, v in d.items()} for g, d in flops_split(ours, ours_forward, steps["ours"]).items()}
    if rel is not None:
        rel.train()
        rel_opt = torch.optim.SGD([p for p in rel.parameters() if p.requires_grad], lr=1e-3, momentum=0.9)
        steps["release"] = functools.partial(_release_step, rel, rel_opt, tr, {})
        out.update(_release_trains(steps))
    steps.update(extra_steps)
    out["gflop_per_train_step"] = {k: round(count(fn)[0] / 1e9, 2) for k, fn in steps.items()}
    steps[alt] = functools.partial(train_step, other, other_opt, _as(tr, alt_precision), alt_precision)
    step_times = interleave(steps, rounds, warmup, device)

    out["train_step_median_s"] = {k: _median(v) for k, v in step_times.items()}
    out["eval_batch_median_s"] = {k: _median(v) for k, v in eval_times.items()}
    base = "release" if rel is not None else "ours"
    tbase = base if base in step_times else "ours"
    out[f"train_speed_vs_{tbase}"] = {k: round(statistics.median(step_times[tbase]) / statistics.median(v), 3)
                                      for k, v in step_times.items()}
    out[f"eval_speed_vs_{base}"] = {k: round(statistics.median(eval_times[base]) / statistics.median(v), 3)
                                    for k, v in eval_times.items()}
    rate = matmul_gflops(device)
    out["matmul_fp32_gflops"] = round(rate, 1)
    out["efficiency_vs_matmul"] = {
        f"train {k}": round(out["gflop_per_train_step"][k] / statistics.median(step_times[k]) / rate, 3)
        for k in steps if k in out["gflop_per_train_step"]}
    out["load_avg_before"], out["load_avg_after"] = load_before, [round(x, 2) for x in os.getloadavg()]
    return out


def peak_rss_mb() -> float:
    """This process image's peak RSS (VmHWM). Unlike getrusage's ru_maxrss it starts afresh at
    exec: a child of a large parent would otherwise report at least the parent's size."""
    with open("/proc/self/status", encoding="utf-8") as f:
        kb = next(int(ln.split()[1]) for ln in f if ln.startswith("VmHWM:"))
    return round(kb / 1024, 1)


def side_peak(cfg, reference: str | None, side: str) -> dict:
    """Peak RSS of a process that builds one side only and runs two training steps and two
    evaluation batches (a child of `--memory`: in one process the two models' peaks mix)."""
    device = resolve_device(cfg.device)
    precision = Precision.from_config(cfg, device)
    seed_everything(cfg.manual_seed)
    net = build_model(cfg).to(device, memory_format=precision.memory_format)
    tr = episode(cfg.batch_size, cfg.shot, cfg.train_h, device)
    ev = episode(cfg.batch_size_val, cfg.shot, cfg.val_size, device)
    if side == "release":
        cls, _ = load_release(reference)
        rel = build_release(cls, cfg).to(device)
        rel.load_state_dict(to_official(net.state_dict(), module_prefix=False), strict=True)
        del net
        for name in ("layer0", "layer1", "layer2", "layer3", "layer4"):
            getattr(rel, name).requires_grad_(False)
        opt = torch.optim.SGD([p for p in rel.parameters() if p.requires_grad], lr=1e-3, momentum=0.9)
        step, evaluate, model = functools.partial(_release_step, rel, opt, tr, {}), functools.partial(_release_eval, rel, ev), rel
    else:
        opt = torch.optim.SGD([p for p in net.parameters() if p.requires_grad], lr=1e-3, momentum=0.9)
        step = functools.partial(train_step, net, opt, _as(tr, precision), precision)
        evaluate, model = functools.partial(eval_batch, net, _as(ev, precision), precision), net
    for _ in range(2):
        model.train()
        step()
        model.eval()
        evaluate()
    return {"side": side, "peak_rss_mb": peak_rss_mb()}


def memory(argv: list[str], reference: str | None) -> dict:
    """Peak RSS of ours and of the release, each in its own child process."""
    out = {}
    for side in ("ours", "release") if reference else ("ours",):
        child = subprocess.run([sys.executable, "-m", "util.bench", "compare", "--side", side, *argv],
                               capture_output=True, text=True, check=False)
        if child.returncode:
            raise UserError(f"memory measurement of {side} failed: {child.stderr.strip().splitlines()[-1:]}")
        out[side] = json.loads(child.stdout.strip().splitlines()[-1])["peak_rss_mb"]
    return {"peak_rss_mb": out}


def main(argv: list[str] | None = None) -> int:
    args = compare_parser().parse_args(argv)
    defaults = ["train_h", "241", "train_w", "241", "val_size", "241", "batch_size", "2", "device", "cpu"]
    cfg = load_config(args.config, defaults + list(args.opts) + ["pretrained", "false"])
    if args.side:
        sys.stdout.write(json.dumps(side_peak(cfg, args.reference, args.side)) + "\n")
        return 0
    out = run(cfg, args.reference, args.rounds, args.warmup, args.variant)
    if args.memory:
        child_argv = (["--reference", args.reference] if args.reference else []) + ["--config", args.config,
                                                                                     *args.opts]
        out.update(memory(child_argv, args.reference))
    sys.stdout.write(json.dumps(out) + "\n")
    return 0
