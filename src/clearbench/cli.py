"""The ``clearbench`` command: argument parsing only; every subcommand calls one recipe."""

from __future__ import annotations

import argparse
import errno
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path

from clearbench import __version__
from clearbench.presets import PRESETS
from clearbench.recipes.lock import RunError

Handler = Callable[[argparse.Namespace], object]


def add_tofu_arguments(parser: argparse.ArgumentParser) -> None:
    """``--tofu`` and ``--tofu-revision``, for every command that reads TOFU."""
    parser.add_argument("--tofu", default=None, metavar="SOURCE",
                        help="TOFU hub id or snapshot folder (default: locuslab/TOFU for a hub "
                        "--data, DATA/tofu for a folder)")
    parser.add_argument("--tofu-revision", default=None, help="pin the hub TOFU to a commit/tag")


def add_data_commands(sub: argparse._SubParsersAction) -> None:
    data = sub.add_parser("data", help="CLEAR data: generate the offline CLEAR-mini set")
    data_sub = data.add_subparsers(dest="data_command", required=True, metavar="COMMAND")
    synth = data_sub.add_parser(
        "synth",
        help="write an offline CLEAR-mini data set in the hub layout",
        description="Write a synthetic CLEAR-format data set (faces, captions, biography QA, "
        "forget/retain splits, real-world analogues, holdout persons) that "
        "datasets.load_dataset(OUT, CONFIG) loads exactly like therem/CLEAR.",
    )
    synth.add_argument("--out", type=Path, required=True, help="folder to write")
    synth.add_argument("--persons", type=int, default=None, help="fictitious persons (default 30)")
    synth.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    synth.add_argument("--validation-persons", type=int, default=0,
                       help="persons of the forget_val split for `clearbench tune` (default 0: "
                       "none)")
    synth.set_defaults(handler=run_synth)


def run_synth(args: argparse.Namespace) -> None:
    from clearbench.data.synth import SynthConfig, synthesize

    sizes = {} if args.persons is None else {"persons": args.persons}
    synthesize(args.out, SynthConfig(seed=args.seed, validation_persons=args.validation_persons,
                                     **sizes))


def add_base_command(sub: argparse._SubParsersAction) -> None:
    base = sub.add_parser(
        "base",
        help="build and pretrain the tiny offline base VLM",
        description="Train a tokenizer on the data set's text, build a tiny VLM "
        "(LLaVA or Qwen2-VL architecture, or a text-only Llama-style LM for the text-only "
        "track) and pretrain it on CLEAR-mini's `pretrain` config (the LM: its text rows).",
    )
    base.add_argument("--data", required=True, help="CLEAR-mini folder (from `data synth`)")
    base.add_argument("--out", type=Path, required=True, help="model folder to write")
    base.add_argument("--arch", choices=["llava", "qwen2_vl", "llama"], default="llava",
                      help="llava, qwen2_vl, or llama (text-only LM; default llava)")
    base.add_argument("--epochs", type=float, default=None,
                      help="pretraining epochs (default 24; 100 for the text-only llama)")
    base.add_argument("--lr", type=float, default=None)
    base.add_argument("--seed", type=int, default=0)
    add_tofu_arguments(base)
    base.set_defaults(handler=run_base)


def run_base(args: argparse.Namespace) -> None:
    from clearbench.models.tiny import TEXT_ARCHS
    from clearbench.recipes.base import TEXT_BASE_EPOCHS, BaseConfig, build_base

    epochs = args.epochs or (TEXT_BASE_EPOCHS if args.arch in TEXT_ARCHS else None)
    overrides = {k: v for k, v in (("epochs", epochs), ("lr", args.lr)) if v is not None}
    build_base(BaseConfig(data=args.data, out=args.out, arch=args.arch, seed=args.seed,
                          tofu=args.tofu, tofu_revision=args.tofu_revision, **overrides))


def add_finetune_command(sub: argparse._SubParsersAction) -> None:
    ft = sub.add_parser(
        "finetune",
        help="fine-tune the vanilla (full+tofu) or gold (retainNN+tofu) model",
        description="Fine-tune a VLM on a CLEAR split with answer-only loss, save it (LoRA "
        "merged) and store the memorisation gate next to it. Resumes after interruption.",
    )
    ft.add_argument("--model", required=True, help="hub id or local model folder")
    ft.add_argument("--data", required=True, help="hub id (e.g. therem/CLEAR) or local folder")
    ft.add_argument("--split", default="full+tofu",
                    help="training config: full+tofu (vanilla) or retainNN+tofu (gold); text "
                    "only (the text-only track, any causal LM): tofu:full or tofu:retainNN")
    ft.add_argument("--out", type=Path, required=True, help="model folder to write")
    ft.add_argument("--recipe", choices=["auto", "paper", "mini"], default="auto",
                    help="paper = spec §2 (LoRA r8, lr 1e-5, 3 epochs); mini = CPU-sized; "
                    "auto picks mini below 100M parameters")
    lora = ft.add_mutually_exclusive_group()
    lora.add_argument("--lora", dest="lora", action="store_true", default=None,
                      help="train a LoRA adapter (merged on save)")
    lora.add_argument("--full", dest="lora", action="store_false", help="train all parameters")
    ft.add_argument("--lora-rank", type=int)
    ft.add_argument("--lora-alpha", type=int)
    ft.add_argument("--lr", type=float)
    ft.add_argument("--epochs", type=float)
    ft.add_argument("--batch-size", type=int)
    ft.add_argument("--grad-accum", type=int)
    ft.add_argument("--gradient-checkpointing", action="store_true", default=None,
                    help="recompute activations in the backward pass (less memory)")
    ft.add_argument("--replay", type=float,
                    help="share of CLEAR-mini's pretrain rows replayed each epoch (mini: 0.25)")
    ft.add_argument("--seed", type=int, default=0)
    ft.add_argument("--data-revision", help="pin the hub data set to a commit/tag")
    add_tofu_arguments(ft)
    ft.add_argument("--model-revision", help="pin the hub model to a commit/tag")
    ft.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16", "float16"])
    ft.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ... (default cpu)")
    ft.add_argument("--gate-split", default="forget10",
                    help="forget split whose persons the memorisation gate checks")
    ft.add_argument("--checkpoint-every", type=int, default=0,
                    help="optimiser steps between checkpoints (0 = every epoch)")
    ft.set_defaults(handler=run_finetune)


def run_finetune(args: argparse.Namespace) -> None:
    from clearbench.recipes.finetune import FinetuneConfig, finetune
    from clearbench.training.distributed import check_device

    check_device(args.device)
    options = vars(args).copy()
    for key in ("command", "handler"):
        options.pop(key, None)
    finetune(FinetuneConfig(**options))


def add_eval_commands(sub: argparse._SubParsersAction) -> None:
    ev = sub.add_parser(
        "eval",
        help="evaluate a model on every CLEAR task (spec §4) and write eval.json",
        description="Greedy generation (conditioned on the image) and the likelihood of every "
        "target, paraphrased and perturbed answer, for every row of the six multimodal and four "
        "TOFU text tasks; writes OUT/eval.json. Finished tasks are kept if interrupted.",
    )
    ev.add_argument("--model", required=True, help="hub id or local model folder")
    ev.add_argument("--data", required=True, help="hub id (e.g. therem/CLEAR) or local folder")
    ev.add_argument("--forget-split", default="forget10",
                    choices=["forget01", "forget05", "forget10", "forget_val"])
    ev.add_argument("--out", type=Path, required=True, help="folder for eval.json")
    ev.add_argument("--tasks", nargs="+", default=None, metavar="TASK",
                    help="evaluate only these tasks (default: all ten)")
    ev.add_argument("--batch-size", type=int, default=32,
                    help="rows per forward pass (default 32)")
    ev.add_argument("--max-new-tokens", type=int, default=32)
    ev.add_argument("--seed", type=int, default=0)
    ev.add_argument("--limit", type=int, default=None,
                    help="score only the first N rows of each task (default: every row)")
    ev.add_argument("--data-revision", help="pin the hub data set to a commit/tag")
    add_tofu_arguments(ev)
    ev.add_argument("--model-revision", help="pin the hub model to a commit/tag")
    ev.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16", "float16"])
    ev.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ... (default cpu)")
    ev.set_defaults(handler=run_eval)

    sc = sub.add_parser(
        "score",
        help="score an eval.json against the gold model's: forget quality, utility, aggregates",
        description="Compare an evaluation with the gold model's evaluation of the same data and "
        "forget split; write OUT/scores.json (forget quality KS and 1 − JS, model utility, "
        "the paper's Real / Retain / Forget aggregates).",
    )
    sc.add_argument("--eval", type=Path, required=True, help="eval.json (or its folder)")
    sc.add_argument("--gold", type=Path, required=True, help="the gold model's eval.json")
    sc.add_argument("--out", type=Path, required=True, help="folder for scores.json")
    sc.add_argument("--unverified-gold", action="store_true",
                    help="score against --gold even if its model's training record does not "
                    "show a fine-tune on the retain split (e.g. a gold model from elsewhere)")
    sc.set_defaults(handler=run_score)


def run_eval(args: argparse.Namespace) -> None:
    from clearbench.recipes.evaluate import EvalConfig, run_eval
    from clearbench.training.distributed import check_device

    check_device(args.device)
    options = {k: v for k, v in vars(args).items() if k not in ("command", "handler")}
    if options["tasks"] is None:
        options.pop("tasks")
    else:
        options["tasks"] = tuple(options["tasks"])
    run_eval(EvalConfig(**options))


def run_score(args: argparse.Namespace) -> None:
    from clearbench.recipes.evaluate import run_score

    run_score(args.eval, args.gold, args.out, unverified_gold=args.unverified_gold)


def add_audit_command(sub: argparse._SubParsersAction) -> None:
    au = sub.add_parser(
        "audit",
        help="does the model still know the forget persons? membership (MUSE PrivLeak), "
        "relearning, robustness, precision and cross-modal audits",
        description="membership: membership inference of the forget persons (members) against "
        "CLEAR-mini's holdout persons (non-members) on image-conditioned captions and, where "
        "the data has the holdout persons' QA (TOFU config holdout), on biography answers "
        "(question -> answer, no image), with the LOSS, zlib, Min-K %, Min-K %++ and "
        "gold-reference attacks, for the model and for the gold model: each attack's AUC and "
        "PrivLeak = (AUC_model - AUC_gold) / AUC_gold with person-bootstrap intervals, per kind "
        "of text; writes OUT/audit.json. relearn: fine-tune the model and "
        "the gold model alike for a few steps on half of the forget persons' rows "
        "(forget_half) and on as many retain rows (retain), measuring forget knowledge K on the "
        "other half's rows after each step of --relearn-steps; the model fails where its K "
        "exceeds gold's by more than 0.05 beyond its person-bootstrap interval; writes "
        "OUT/relearn.json. robustness: forget knowledge K under seeded image perturbations "
        "(crop, blur, JPEG, grayscale, flip, colour jitter), held-out prompt wordings and "
        "sampled decoding (does any of --samples answers name the person?); with --vanilla "
        "also vanilla's and gold's K and progress P under each; writes OUT/robustness.json. "
        "precision: K after int8 and 4-bit NF4 quantization, bf16 / fp16 round trips, and the "
        "LoRA adapter (--adapter) merged into or kept beside the --vanilla base stored at bf16 "
        "/ fp16; with --vanilla also P per transform, flagged when it falls by more than its "
        "interval's half-width; writes OUT/precision.json. crossmodal: K and P of one "
        "method's models unlearned on text only (--text-model), "
        "images only (--visual-model) and both (--model), probed through the forget QA, "
        "face->name, captioning and a text prompt naming the person (describe), with paired "
        "person-bootstrap intervals: does unlearning both modalities forget more, probe by "
        "probe? writes OUT/crossmodal.json (docs/audits.md).",
    )
    au.add_argument("--model", required=True, help="model folder (or hub id) to audit "
                    "(crossmodal: the one unlearned on both modalities)")
    au.add_argument("--gold", required=True, help="the gold model of --forget-split")
    au.add_argument("--data", required=True,
                    help="CLEAR-mini folder (membership needs its `holdout`; the QA answers' "
                    "audit its TOFU `holdout`) or hub id")
    au.add_argument("--audits", default="membership",
                    help="comma-separated audits to run: membership, relearn, robustness, "
                    "precision, crossmodal (default membership)")
    au.add_argument("--vanilla", default=None,
                    help="relearn, robustness, precision, crossmodal: the vanilla model, for "
                    "forgetting progress P (and precision's adapter base)")
    au.add_argument("--text-model", default=None,
                    help="crossmodal: the same method unlearned on text only (--modality text)")
    au.add_argument("--visual-model", default=None,
                    help="crossmodal: the same method unlearned on images only "
                    "(--modality visual)")
    au.add_argument("--forget-split", default="forget10",
                    choices=["forget01", "forget05", "forget10", "forget_val"])
    au.add_argument("--out", type=Path, required=True,
                    help="folder for audit.json, relearn.json, robustness.json, "
                    "precision.json and crossmodal.json")
    au.add_argument("--k", type=float, default=None,
                    help="Min-K %% fraction of lowest tokens (default 0.2)")
    au.add_argument("--batch-size", type=int, default=None,
                    help="rows per forward pass when scoring and evaluating")
    au.add_argument("--replicates", type=int, default=None,
                    help="person-bootstrap replicates (default 1000)")
    au.add_argument("--seed", type=int, default=0,
                    help="seed of the bootstrap and of relearn's person halves, retain sample "
                    "and batches (default 0)")
    au.add_argument("--adapter", default=None,
                    help="precision: the model's unmerged LoRA adapter folder (default "
                    "MODEL/adapter when present: unlearn --lora --save-adapter)")
    au.add_argument("--max-new-tokens", type=int, default=None,
                    help="greedy generation length of the forget tasks of precision, "
                    "relearn, robustness and crossmodal (default 32)")
    au.add_argument("--relearn-steps", type=_integers, default=None, metavar="S1,S2,...",
                    help="relearn: optimiser steps after which K is measured, in one run up to "
                    "the largest (default 5,20,50)")
    au.add_argument("--relearn-lr", type=float, default=None,
                    help="relearn: constant learning rate, full parameters (default 2e-3)")
    au.add_argument("--relearn-batch-size", type=int, default=None,
                    help="relearn: rows per optimiser step (default 16)")
    au.add_argument("--samples", type=int, default=None,
                    help="robustness: sampled answers per forget row (default 5)")
    au.add_argument("--temperature", type=float, default=None,
                    help="robustness: sampling temperature (default 1)")
    au.add_argument("--data-revision", help="pin the hub data set to a commit/tag")
    au.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16", "float16"])
    au.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ... (default cpu)")
    au.set_defaults(handler=run_audit)


def _integers(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not comma-separated integers: {text!r}") from None


AUDITS = ("membership", "relearn", "robustness", "precision", "crossmodal")


def run_audit(args: argparse.Namespace) -> None:
    from dataclasses import fields

    from clearbench.recipes.audit import AuditConfig, run_audit
    from clearbench.recipes.crossmodal import CrossModalConfig, run_crossmodal
    from clearbench.recipes.precision import PrecisionConfig, run_precision
    from clearbench.recipes.relearn import RelearnConfig, run_relearn
    from clearbench.recipes.robustness import RobustnessConfig, run_robustness
    from clearbench.training.distributed import check_device

    check_device(args.device)
    audits = [name.strip() for name in args.audits.split(",")]
    unknown = [name for name in audits if name not in AUDITS]
    if unknown:
        raise ValueError(f"--audits {args.audits!r}: choose from {', '.join(AUDITS)}")
    options = {k: v for k, v in vars(args).items() if v is not None}
    runs = {"membership": (AuditConfig, run_audit), "relearn": (RelearnConfig, run_relearn),
            "robustness": (RobustnessConfig, run_robustness),
            "precision": (PrecisionConfig, run_precision),
            "crossmodal": (CrossModalConfig, run_crossmodal)}
    configs = {}
    for name in audits:  # every audit's settings are checked before any runs
        given = options if name != "robustness" or "vanilla" in options else \
            {k: v for k, v in options.items() if k != "gold"}  # P needs vanilla and gold
        configs[name] = runs[name][0](**{f.name: given[f.name] for f in fields(runs[name][0])
                                         if f.name in given})
    for name, config in configs.items():
        runs[name][1](config)


def add_unlearn_command(sub: argparse._SubParsersAction) -> None:
    un = sub.add_parser(
        "unlearn",
        help="make the vanilla model forget a split with one unlearning method",
        description="Unlearn a forget split from the vanilla model with a registered method "
        "(spec §3). Forget data follow --modality (both = forgetNN+tofu, visual = forgetNN, "
        "text = TOFU forgetNN); retain data are retainNN+tofu (--track text, the text-only "
        "track of a causal LM: TOFU retainNN); one epoch is one pass over the forget set, each "
        "forget item paired with a random retain item. Resumes after interruption; a NaN/inf "
        "loss stops the run with status 'diverged'.",
    )
    un.add_argument("--model", required=True, help="the vanilla model (hub id or folder)")
    un.add_argument("--data", required=True, help="hub id (e.g. therem/CLEAR) or local folder")
    un.add_argument("--method", required=True,
                    help="retain_ft, ga, gd, kl, idk, dpo, npo, scrub, llmu, rmu or sku")
    un.add_argument("--forget-split", default="forget10",
                    choices=["forget01", "forget05", "forget10", "forget_val"])
    un.add_argument("--modality", default="both", choices=["both", "visual", "text"])
    un.add_argument("--track", default="multimodal", choices=["multimodal", "text"],
                    help="text: the text-only track (with --modality text; TOFU retain data)")
    un.add_argument("--out", type=Path, required=True, help="model folder to write")
    un.add_argument("--option", action="append", default=[], metavar="NAME=VALUE",
                    help="a method hyper-parameter, e.g. --option beta=0.5 (repeatable)")
    un.add_argument("--lora", action="store_true", help="train a LoRA adapter (merged on save)")
    un.add_argument("--lora-rank", type=int, default=8)
    un.add_argument("--lora-alpha", type=int, default=32)
    un.add_argument("--lora-targets", nargs="+", default=None, metavar="NAME",
                    help="LoRA target module names (default: every language-model linear)")
    un.add_argument("--save-adapter", action="store_true",
                    help="with --lora, also save the unmerged adapter to OUT/adapter")
    un.add_argument("--l1", type=float, default=0.0,
                    help="λ of λ·Σ|w| over the LoRA matrices (or θ − θ₀ without LoRA)")
    un.add_argument("--recipe", choices=["auto", "paper", "mini"], default="auto")
    un.add_argument("--lr", type=float)
    un.add_argument("--epochs", type=float)
    un.add_argument("--batch-size", type=int)
    un.add_argument("--gradient-checkpointing", action="store_true", default=None,
                    help="recompute activations in the backward pass (less memory)")
    un.add_argument("--seed", type=int, default=0)
    un.add_argument("--data-revision", help="pin the hub data set to a commit/tag")
    add_tofu_arguments(un)
    un.add_argument("--model-revision")
    un.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16", "float16"])
    un.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ... (default cpu)")
    un.add_argument("--checkpoint-every", type=int, default=0)
    un.set_defaults(handler=run_unlearn)


def parse_options(pairs: Sequence[str]) -> dict[str, object]:
    """``NAME=VALUE`` pairs; values are read as YAML scalars (numbers, booleans, null)."""
    import yaml

    options = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise ValueError(f"--option must look like NAME=VALUE, got {pair!r}")
        options[name.strip().replace("-", "_")] = yaml.safe_load(value)
    return options


def run_unlearn(args: argparse.Namespace) -> None:
    from clearbench.recipes.unlearn import UnlearnConfig, unlearn
    from clearbench.training.distributed import check_device

    check_device(args.device)
    options = {k: v for k, v in vars(args).items() if k not in ("command", "handler", "option")}
    if options["lora_targets"] is not None:
        options["lora_targets"] = tuple(options["lora_targets"])
    record = unlearn(UnlearnConfig(options=parse_options(args.option), **options))
    if record.get("status") == "diverged":
        print(f"unlearn: status diverged at step {record['diverged_at_step']}")


def add_run_command(sub: argparse._SubParsersAction) -> None:
    run = sub.add_parser(
        "run",
        help="run the whole benchmark (default: the embedded CLEAR-mini config)",
        description="Run every stage of a benchmark config (synthesise, pretrain, fine-tune "
        "vanilla and gold, unlearn with every method, evaluate, score, report). Finished "
        "stages are skipped, interrupted ones resume, changed ones are redone.",
    )
    _run_arguments(run, default="the embedded configs/mini.yaml")
    run.set_defaults(handler=run_pipeline)


def add_tune_command(sub: argparse._SubParsersAction) -> None:
    tune = sub.add_parser(
        "tune",
        help="choose each method's settings on validation persons (the run's tuning stages)",
        description="Run only the tuning protocol of a run config (its `tune` section, "
        "docs/tuning.md): the validation gold model, every method's grid on the validation "
        "persons (disjoint from the test forget persons) and each method's choice, written to "
        "RUN_DIR/tune/SPLIT/METHOD-VARIANT/selection.json. `clearbench run` with the same "
        "config and folder reuses them and unlearns the test split with the chosen settings.",
    )
    _run_arguments(tune, default="the embedded configs/tuned.yaml")
    tune.set_defaults(handler=run_pipeline, tune_only=True)


def _run_arguments(parser: argparse.ArgumentParser, default: str) -> None:
    """The arguments ``run`` and ``tune`` share."""
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--config", type=Path, default=None,
                        help=f"run config (default: {default})")
    source.add_argument("--preset", choices=list(PRESETS), default=None,
                        help="an embedded config: " + "; ".join(
                            f"{name} ({what})" for name, what in PRESETS.items()))
    parser.add_argument("--out", type=Path, default=None,
                        help="run folder (default: runs/CONFIG_NAME)")
    parser.add_argument("--jobs", type=int, default=None,
                        help="stages run at once in worker processes (default: the config's)")
    parser.add_argument("--dry-run", action="store_true",
                        help="print the plan (stages, data sizes, steps, memory) and stop; "
                        "loads no weights")


def run_pipeline(args: argparse.Namespace) -> None:
    from clearbench.recipes.pipeline import run

    if args.jobs is not None and args.jobs < 1:
        raise ValueError(f"--jobs must be ≥ 1, got {args.jobs}")
    run(args.config, args.out, preset=args.preset, dry_run=args.dry_run, jobs=args.jobs,
        tune_only=getattr(args, "tune_only", False))


def add_report_commands(sub: argparse._SubParsersAction) -> None:
    report = sub.add_parser(
        "report",
        help="rebuild a run's report from its results.json",
        description="Write report.html, report.md, leaderboard.csv and the plots of a run "
        "folder from its stored results.json (no model is loaded).",
    )
    report.add_argument("run_dir", type=Path, help="run folder holding results.json")
    report.set_defaults(handler=run_report)
    compare = sub.add_parser(
        "compare",
        help="print the differences between two runs' results",
        description="Match the rows of two runs' results.json by method, variant, modality and "
        "forget split and print every score that differs.",
    )
    compare.add_argument("run_a", type=Path, help="first run folder")
    compare.add_argument("run_b", type=Path, help="second run folder")
    compare.set_defaults(handler=run_compare)


def run_report(args: argparse.Namespace) -> None:
    from clearbench.report import write_report

    for path in write_report(args.run_dir):
        print(f"wrote {path}")


def run_compare(args: argparse.Namespace) -> None:
    from clearbench.report import compare_runs

    print(compare_runs(args.run_a, args.run_b))


def add_cv_commands(sub: argparse._SubParsersAction) -> None:
    cv = sub.add_parser("cv", help="the vision-only track: face identification and unlearning")
    cv_sub = cv.add_subparsers(dest="cv_command", required=True, metavar="COMMAND")
    run = cv_sub.add_parser(
        "run",
        help="pretrain, fine-tune, unlearn and attack a face-ID network (paper Table 2)",
        description="The vision-only track: pretrain a face-ID network on the celebrity pool, "
        "fine-tune it on the CLEAR persons (vanilla), retrain it without the forget persons "
        "(gold), unlearn with every method, and measure forget/retain/holdout identification "
        "accuracy, U-LiRA (with shadow replicas) and U-MIA. Writes OUT/cv_results.json and "
        "OUT/cv_table.md; finished stages are skipped on a re-run.",
    )
    run.add_argument("--data", default=None,
                     help="CLEAR folder or hub id (default: generate CLEAR-mini into OUT/data)")
    run.add_argument("--data-revision", default=None, help="pin the hub data set to a commit")
    run.add_argument("--out", type=Path, default=Path("runs/cv"),
                     help="output folder (default runs/cv)")
    run.add_argument("--forget-split", default="forget10",
                     choices=["forget01", "forget05", "forget10"])
    run.add_argument("--network", default="mini", choices=["mini", "resnet18"],
                     help="mini: small ResNet for 64 px faces; resnet18: the paper's")
    run.add_argument("--shadows", type=int, default=None,
                     help="shadow replicas for U-LiRA (default 3; the paper used 128)")
    run.add_argument("--methods", nargs="+", default=None,
                     help="CV methods to run (default: all registered)")
    run.add_argument("--seed", type=int, default=0)
    for name in ("pretrain-epochs", "finetune-epochs", "unlearn-epochs"):
        run.add_argument(f"--{name}", type=int, default=None)
    run.add_argument("--lr", type=float, default=None, help="pretraining/fine-tuning rate")
    run.add_argument("--unlearn-lr", type=float, default=None)
    run.add_argument("--option", action="append", default=[], metavar="METHOD.KEY=VALUE",
                     help="a method hyper-parameter, e.g. rmu.stage=2 (repeatable)")
    run.set_defaults(handler=run_cv_track)


def run_cv_track(args: argparse.Namespace) -> None:
    from clearbench.cv.recipe import CVConfig, run_cv

    settings = {key: getattr(args, key) for key in (
        "shadows", "methods", "pretrain_epochs", "finetune_epochs", "unlearn_epochs", "lr",
        "unlearn_lr") if getattr(args, key) is not None}
    method_options: dict[str, dict[str, object]] = {}
    for key, value in parse_options(args.option).items():
        method, dot, option = key.partition(".")
        if not dot or not option:
            raise ValueError(f"--option {key}: expected METHOD.KEY=VALUE")
        method_options.setdefault(method, {})[option] = value
    run_cv(CVConfig(out=args.out, data=args.data, data_revision=args.data_revision,
                    forget_split=args.forget_split, network=args.network, seed=args.seed,
                    method_options=method_options, **settings))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="clearbench",
        description="CLEAR: benchmark multimodal machine unlearning (data, models, methods, "
        "evaluation).",
    )
    parser.add_argument("--debug", action="store_true",
                        help="show the traceback of an error too (also: CLEARBENCH_DEBUG=1)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_data_commands(sub)
    add_base_command(sub)
    add_finetune_command(sub)
    add_eval_commands(sub)
    add_audit_command(sub)
    add_unlearn_command(sub)
    add_run_command(sub)
    add_tune_command(sub)
    add_report_commands(sub)
    add_cv_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one subcommand. An expected failure (bad input, a file or folder the system refuses,
    a busy run folder, a failed or killed stage) ends in a one-line error and exit code 2,
    Ctrl-C in exit code 130; ``--debug`` (or ``CLEARBENCH_DEBUG=1``) adds the traceback. Any
    other exception is a bug: its traceback, then how to report it (exit code 1)."""
    args = build_parser().parse_args(argv)
    # popped: a handler passes its command's options on, and --debug is none of them
    debug = vars(args).pop("debug") or bool(os.environ.get("CLEARBENCH_DEBUG"))
    try:
        args.handler(args)
    except KeyboardInterrupt:
        return _fail(args.command, INTERRUPTED, 130, debug)
    except (ValueError, RunError) as err:
        return _fail(args.command, str(err), 2, debug)
    except OSError as err:
        return _fail(args.command, _os_error(err), 2, debug)
    except Exception:
        traceback.print_exc()
        print(f"clearbench {args.command}: this is a bug in clearbench {__version__}, not in "
              "your input: please report it to the clearbench maintainers with the command "
              "line and the traceback above", file=sys.stderr)
        return 1
    return 0


INTERRUPTED = "interrupted; finished stages are kept, rerun the same command to resume"
_OS_HINTS = {
    errno.ENOSPC: "free some space, then rerun the same command to resume",
    errno.EDQUOT: "free some space, then rerun the same command to resume",
    errno.EROFS: "choose a folder on a writable file system",
    errno.EACCES: "choose a folder you may write to, or fix its permissions",
    errno.EPERM: "choose a folder you may write to, or fix its permissions",
    errno.ENOTDIR: "a part of this path is a file, not a folder",
    errno.EEXIST: "a file of this name is in the way",
}


def _os_error(err: OSError) -> str:
    """``PATH: REASON (what to do)`` for an error of the system, or the message of one this
    package raised."""
    if err.strerror is None:  # raised with a message of our own
        return str(err)
    where = f"{err.filename}: " if err.filename is not None else ""
    hint = _OS_HINTS.get(err.errno)
    return f"{where}{err.strerror}" + (f" ({hint})" if hint else "")


def _fail(command: str, message: str, code: int, debug: bool) -> int:
    """Print the one-line error (after the traceback when ``debug``); ``code``."""
    if debug:
        traceback.print_exc()
    print(f"clearbench {command}: error: {message}", file=sys.stderr)
    return code
