"""Evaluation speed and exactness: the fast evaluator against the naive reference.

On one model and data set, evaluates every task twice: with the fast evaluator (rows batched,
batched greedy generation with the KV cache, every candidate answer of a row scored from one
shared encoding of image + prompt) and with the naive reference (what the authors' code does:
each candidate scored by its own full forward pass with the image; here also one row at a
time). Prints wall time per task and in total, the speed-up (goal ≥ 5×) and the largest
absolute difference of any per-row or per-task metric (must be ≤ 1e-4). Also checks batch-size
invariance (batch 1 vs the chosen batch size) and, given a gold model, the sanity of forget
quality (gold vs itself = 1, vanilla vs gold < 0.05).

    python benchmarks/evaluation.py --model RUN/vanilla --data RUN/data [--gold RUN/gold_forget10]

Without arguments it uses the default mini run folder ``runs/mini`` (``clearbench run``).
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import torch

from clearbench.evaluation.evaluate import EvalSettings, Evaluable, evaluate_task
from clearbench.evaluation.reference import NaiveVLM
from clearbench.evaluation.scoring import score
from clearbench.evaluation.tasks import TASKS
from clearbench.models.loading import load_vlm
from clearbench.recipes.stage import data_source

ROW_NUMBERS = ("rougeL_recall", "loss_target", "loss_paraphrased", "prob")
TASK_NUMBERS = ("rougeL_recall", "probability", "truth_ratio", "fact_accuracy")


def run_all(vlm: Evaluable, source: Any, settings: EvalSettings, split: str) -> tuple[dict, dict]:
    """Every task's result and wall seconds."""
    results, seconds = {}, {}
    for task in TASKS:
        rows = task.rows(source, split)
        started = time.perf_counter()
        results[task.name] = evaluate_task(vlm, task, rows, settings)
        seconds[task.name] = time.perf_counter() - started
    return results, seconds


def differences(a: dict, b: dict) -> dict[str, tuple[float, str]]:
    """Largest difference, and where, of: reported task metrics (absolute), per-row values
    (absolute: ROUGE-L, losses, probability) and per-row truth ratios R (relative: R is an
    unbounded ratio exp(ΔNLL), so a 1e-6 NLL rounding moves an R of 400 by 4e-4)."""
    worst: dict[str, tuple[float, str]] = {"task metrics": (0.0, ""), "row values": (0.0, ""),
                                           "row R (relative)": (0.0, "")}

    def note(kind: str, label: str, x: float, y: float, relative: bool = False) -> None:
        gap = abs(x - y) / max(1.0, abs(x)) if relative else abs(x - y)
        if gap > worst[kind][0]:
            worst[kind] = (gap, label)

    for name, task in a.items():
        for key in TASK_NUMBERS:
            note("task metrics", f"{name}.{key}", task[key], b[name][key])
        for row, other in zip(task["rows"], b[name]["rows"], strict=True):
            for key in ROW_NUMBERS:
                note("row values", f"{row['id']}.{key}", row[key], other[key])
            for x, y in zip(row["loss_perturbed"], other["loss_perturbed"], strict=True):
                note("row values", f"{row['id']}.loss_perturbed", x, y)
            note("row R (relative)", row["id"], row["truth_ratio_raw"], other["truth_ratio_raw"],
                 relative=True)
    return worst


def differing_answers(a: dict, b: dict) -> list[str]:
    return [row["id"] for name, task in a.items()
            for row, other in zip(task["rows"], b[name]["rows"], strict=True)
            if row["generated"] != other["generated"]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="runs/mini/vanilla")
    parser.add_argument("--data", default="runs/mini/data")
    parser.add_argument("--gold", default="runs/mini/gold_forget10",
                        help="gold model for the forget-quality sanity check ('' to skip)")
    parser.add_argument("--forget-split", default="forget10")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    args = parser.parse_args()

    source = data_source(args.data)
    settings = EvalSettings(batch_size=args.batch_size, max_new_tokens=args.max_new_tokens)
    vlm = load_vlm(args.model)
    print(f"model {args.model}: {vlm.num_parameters() / 1e6:.1f} M parameters, "
          f"{torch.get_num_threads()} threads")

    fast, fast_s = run_all(vlm, source, settings, args.forget_split)
    naive, naive_s = run_all(NaiveVLM(vlm), source, settings, args.forget_split)
    one, _ = run_all(vlm, source, EvalSettings(batch_size=1, max_new_tokens=args.max_new_tokens),
                     args.forget_split)

    print(f"\n{'task':18} {'rows':>5} {'fast s':>8} {'naive s':>8} {'speed-up':>9}")
    for task in TASKS:
        name = task.name
        print(f"{name:18} {fast[name]['n']:5d} {fast_s[name]:8.2f} {naive_s[name]:8.2f}"
              f" {naive_s[name] / fast_s[name]:8.1f}×")
    total_fast, total_naive = sum(fast_s.values()), sum(naive_s.values())
    rows = sum(task["n"] for task in fast.values())
    print(f"{'all':18} {rows:5d} {total_fast:8.2f} {total_naive:8.2f}"
          f" {total_naive / total_fast:8.1f}×   (goal ≥ 5×)")

    for label, other in (("the naive reference", naive), ("batch size 1", one)):
        print(f"\nfast evaluator vs {label} (limit 1e-4):")
        for kind, (gap, where) in differences(fast, other).items():
            print(f"  largest {kind:17} difference {gap:.2e} {'OK' if gap <= 1e-4 else 'FAILED'}"
                  f"  ({where})")
        answers = differing_answers(fast, other)
        print(f"  generations that differ: {len(answers)} {answers[:3]}")

    if args.gold:
        gold_vlm = load_vlm(args.gold)
        gold, _ = run_all(gold_vlm, source, settings, args.forget_split)
        header = {"model": {}, "data": {"fingerprint": source.fingerprint()},
                  "forget_split": args.forget_split, "settings": {}}
        vanilla_eval, gold_eval = header | {"tasks": fast}, header | {"tasks": gold}
        itself = score(gold_eval, gold_eval)["forget_quality"]
        scores = score(vanilla_eval, gold_eval)
        print(f"\nforget quality gold vs itself   {itself:.3g} (must be 1.0)")
        by_task = {k: float(f"{v:.3g}") for k, v in scores["forget_quality_by_task"].items()}
        print(f"forget quality vanilla vs gold  {scores['forget_quality']:.3g} (must be < 0.05);"
              f" by task {by_task}")
        print(f"forget quality (1 − JS, authors) {scores['authors_forget_quality']:.3f}")


if __name__ == "__main__":
    main()
