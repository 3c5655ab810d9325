"""Every unlearning method on the default mini set, with and without ℓ1-LoRA: the evidence table.

Takes a finished mini run folder (``clearbench run``: data, vanilla, gold-forget10), unlearns
forget10 from the vanilla model with every registered method (``both`` modality) twice — full
parameters without ℓ1, and LoRA with ℓ1 — evaluates every model on the forget and retain tasks,
scores it against the gold model and prints forget / retain ROUGE-L, probability and truth
ratio next to vanilla and gold, forget quality, and the cost of each run. Runs are cached in
RUN/unlearning-bench, so a rerun only does what is missing.

    python benchmarks/unlearning.py [--run runs/mini] [--l1 1e-4] [--lora-lr 1e-3]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from statistics import harmonic_mean
from typing import Any

from clearbench.evaluation.scoring import score
from clearbench.methods import METHODS
from clearbench.recipes.evaluate import EvalConfig, run_eval
from clearbench.recipes.unlearn import UnlearnConfig, unlearn

TASKS = ("forget_captions", "forget_face_name", "forget_qa",
         "retain_captions", "retain_face_name", "retain_qa")
METRICS = ("rougeL_recall", "probability", "truth_ratio")


def side(evaluation: dict[str, Any], kind: str) -> dict[str, float]:
    """Mean of each metric over the forget (or retain) tasks, and their harmonic mean."""
    tasks = [t for t in TASKS if t.startswith(kind)]
    means = {m: sum(evaluation["tasks"][t][m] for t in tasks) / len(tasks) for m in METRICS}
    values = [evaluation["tasks"][t][m] for t in tasks for m in METRICS]
    return means | {"hmean": harmonic_mean(values)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, default=Path("runs/mini"))
    parser.add_argument("--l1", type=float, default=1e-4, help="λ of the ℓ1-LoRA runs")
    parser.add_argument("--lora-lr", type=float, default=None,
                        help="learning rate of the LoRA runs (default: the recipe's)")
    parser.add_argument("--methods", nargs="+", default=sorted(METHODS))
    args = parser.parse_args()

    data, work = args.run / "data", args.run / "unlearning-bench"

    def evaluate(model: Path, out: Path) -> dict[str, Any]:
        return run_eval(EvalConfig(model=str(model), data=str(data), out=out, tasks=TASKS))

    gold = evaluate(args.run / "gold-forget10", work / "gold")
    rows = [("vanilla", "-", evaluate(args.run / "vanilla", work / "vanilla"), {}),
            ("gold", "-", gold, {})]
    for method in args.methods:
        for variant, settings in (("full", {}),
                                  ("l1-lora", {"lora": True, "l1": args.l1, "lr": args.lora_lr})):
            out = work / f"{method}-{variant}"
            record = unlearn(UnlearnConfig(model=str(args.run / "vanilla"), data=str(data),
                                           method=method, out=out, **settings))
            record = json.loads((out / "unlearning.json").read_text())
            evaluation = evaluate(out, out / "eval") if record["status"] == "ok" else None
            rows.append((method, variant, evaluation, record))

    header = (f"{'method':10} {'variant':8} {'status':8} | {'forget R-L':>10} {'prob':>6} "
              f"{'TR':>6} {'hmean':>6} | {'retain R-L':>10} {'prob':>6} {'TR':>6} {'hmean':>6} | "
              f"{'FQ (KS)':>8} {'FQ JS':>6} | {'secs':>6} {'steps':>5} {'fwd':>5} "
              f"{'peakGB':>6} {'trainable':>9}")
    print("\n" + header + "\n" + "-" * len(header))
    for method, variant, evaluation, record in rows:
        status = record.get("status", "ok")
        if evaluation is None:
            print(f"{method:10} {variant:8} {status:8} | diverged at step "
                  f"{record['diverged_at_step']}")
            continue
        forget, retain = side(evaluation, "forget"), side(evaluation, "retain")
        scores = score(evaluation, gold)
        cost = record.get("cost", {})
        cost_text = (f"{cost['seconds']:6.1f} {cost['optimiser_steps']:5d} "
                     f"{cost['forward_passes']:5d} {cost['peak_memory_gb']:6.2f} "
                     f"{cost['trainable_parameters']:9d}") if cost else ""
        print(f"{method:10} {variant:8} {status:8} | {forget['rougeL_recall']:10.3f} "
              f"{forget['probability']:6.3f} {forget['truth_ratio']:6.3f} {forget['hmean']:6.3f} | "
              f"{retain['rougeL_recall']:10.3f} {retain['probability']:6.3f} "
              f"{retain['truth_ratio']:6.3f} {retain['hmean']:6.3f} | "
              f"{scores['forget_quality']:8.2g} {scores['authors_forget_quality']:6.3f} | "
              f"{cost_text}")


if __name__ == "__main__":
    main()
