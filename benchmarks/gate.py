"""The memorisation gate is robust: the default run's vanilla and gold models pass it on 3 seeds
× 1 and 2 threads (the thread count changes float rounding, so the models differ).

For each seed and thread count, builds CLEAR-mini, the base model and the vanilla and gold
models of the default config as ``clearbench run`` does (``benchmarks/mini_models.py``) and
prints the gate: ROUGE-L recall / fact accuracy per task (≥ 0.9 for vanilla on every task and
for gold on the retain tasks; gold names at most 10 % of the forget faces, i.e. chance). With
one thread, vanilla and gold train side by side, as in the run.

    python benchmarks/gate.py [--seeds 0 1 2] [--threads 1 2] [--work DIR]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from mini_models import build

from clearbench.evaluation.gate import GATE_TASKS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--work", type=Path, help="work in this folder and keep it")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="clearbench-gate-"))
    gates = {}
    for seed in args.seeds:
        for threads in args.threads:
            root = build(work, seed, threads, side_by_side=threads == 1)
            for role in ("vanilla", "gold"):
                gates[seed, threads, role] = json.loads((root / role / "memorisation.json")
                                                        .read_text())
    short = {task: task.replace("forget_", "f.").replace("retain_", "r.") for task in GATE_TASKS}
    print("\n== memorisation gate (ROUGE-L recall / fact accuracy; face→name: fact accuracy) ==")
    print(f"{'seed':>4} {'thr':>3} {'model':7} {'verdict':7} "
          + " ".join(f"{short[t]:>13}" for t in GATE_TASKS))
    for (seed, threads, role), gate in gates.items():
        cells = []
        for task in GATE_TASKS:
            scores = gate["tasks"][task]
            cells.append(f"{scores['fact_accuracy']:.2f}" if task.endswith("face_name")
                         else f"{scores['rougeL_recall']:.2f}/{scores['fact_accuracy']:.2f}")
        verdict = "PASS" if gate["passed"] else "FAIL"
        print(f"{seed:>4} {threads:>3} {role:7} {verdict:7} "
              + " ".join(f"{c:>13}" for c in cells))
        for failure in gate["failures"]:
            print(f"{'':>24}- {failure}")
    rows = {gate["tasks"][t]["n"] for gate in gates.values() for t in GATE_TASKS}
    passed = sum(gate["passed"] for gate in gates.values())
    print(f"rows per gate task: {sorted(rows)}; passed {passed} of {len(gates)} (work: {work})")


if __name__ == "__main__":
    main()
