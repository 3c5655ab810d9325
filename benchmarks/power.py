"""Power and size of the forget-quality test on the default config (spec §7): per seed, the KS
p-value of the vanilla model against gold (must be ≤ 1e-3: the test tells a model that knows
the forget persons from one that never saw them) and of a gold model fine-tuned with another
seed against gold (must be ≥ 0.05: the test does not tell two gold models apart), on the
forget captions and the forget QA, with the median truth ratios behind them.

Builds each seed's models as ``clearbench run`` does (``benchmarks/mini_models.py``, 2
threads; pass the same ``--work`` as ``benchmarks/gate.py`` to reuse its models), evaluates
them on the forget tasks and prints one line per seed and task.

    python benchmarks/power.py [--seeds 0 1 2] [--work DIR]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

from mini_models import build, clearbench, wait

from clearbench.evaluation.metrics import forget_quality_ks
from clearbench.io import read_json

TASKS = ("forget_captions", "forget_qa")
POWER, SIZE = 1e-3, 0.05
MODELS = ("vanilla", "gold", "gold_reseeded")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--work", type=Path, help="work in this folder and keep it")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="clearbench-power-"))
    lines = []
    for seed in args.seeds:
        root = build(work, seed, 2, reseeded=True)
        for model in MODELS:
            wait({f"eval {model}": clearbench(
                ["eval", "--model", str(root / model), "--data", str(root / "data"),
                 "--tasks", *TASKS, "--out", str(root / model / "eval-forget")], 2)})
        ratios = {model: {task: [row["truth_ratio_raw"] for row in read_json(
            root / model / "eval-forget" / "eval.json", what="evaluation")["tasks"][task]["rows"]]
            for task in TASKS} for model in MODELS}
        for task in TASKS:
            gold = ratios["gold"][task]
            power = forget_quality_ks(ratios["vanilla"][task], gold)
            size = forget_quality_ks(ratios["gold_reseeded"][task], gold)
            medians = " ".join(f"{statistics.median(ratios[m][task]):6.3f}" for m in MODELS)
            lines.append(f"{seed:>4} {task:16} {len(gold):>4} {medians}   {power:9.2e} "
                         f"{'ok' if power <= POWER else 'WEAK':>4}   {size:6.3f} "
                         f"{'ok' if size >= SIZE else 'REJECTS':>7}")
    print("\n== forget quality (KS) on the default config: power (vanilla vs gold, "
          f"≤ {POWER:g}) and size (reseeded gold vs gold, ≥ {SIZE:g}) ==")
    print(f"{'seed':>4} {'task':16} {'rows':>4} {'median R: vanilla gold reseeded':>26}   "
          f"{'p vanilla':>9}        {'p reseeded':>10}")
    print("\n".join(lines))
    print(f"(work: {work})")


if __name__ == "__main__":
    main()
