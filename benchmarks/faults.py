"""The fault audit: what ``clearbench`` does with bad inputs, kills and stale folders.

    python benchmarks/faults.py [--only PATTERN] [--json OUT] [--keep DIR]

Every case runs ``python -m clearbench ...`` in a subprocess (its own process group, a
timeout) in a temporary folder, and is classed:

- clear-and-early: exit ≠ 0, a message without "Traceback", and (for ``run``) no training stage
  (pretrain, fine-tune, unlearn) finished before it;
- clear-but-late: the same, but after a training stage finished;
- traceback: the output holds a Python traceback;
- silently-wrong-or-stale: exit 0, but the case's own check of observable facts (mtimes and
  contents of stage records, "already done" lines, results.json values) finds the wrong thing;
- hang: it ran past its timeout;
- correct: a case where success is right (a rerun, a resume, a comparison) and the check passed.

The staleness and kill cases copy one prepared run of a small config derived from the smoke
preset (``ga`` only, one seed, one variant, no modality study); it is built first (~1 min).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
SMOKE = ROOT / "src" / "clearbench" / "configs" / "smoke.yaml"
CLASSES = ("clear-and-early", "clear-but-late", "traceback", "silently-wrong-or-stale", "hang",
           "correct")
TIMEOUT = 180.0
TRAINING = ("pretrain", "fine-tune", "unlearn")
STAGE_LINE = re.compile(r"^\[\d+/\d+\] (.+?)(?: \.\.\.|: [\d.]+ s · .*)$")
RAW = re.compile(r"'@@(.*?)@@'")
MARKERS = ("base/base.json", "vanilla/training.json", "gold-forget10/training.json",
           "gold-forget10-reseeded/training.json",
           "unlearn/forget10/both/ga-lora/seed0/unlearning.json",
           "vanilla/eval-forget10/eval.json",
           "unlearn/forget10/both/ga-lora/seed0/eval-forget10/eval.json")
"""Stage records of the prepared run, upstream first."""
UNLEARNED = "unlearn/forget10/both/ga-lora/seed0"


def raw(text: str) -> str:
    """A config value written into the YAML as is (``raw("2e-3")`` → ``lr: 2e-3``)."""
    return f"@@{text}@@"


@dataclass
class Outcome:
    rc: int | None
    """Exit status; None when the case timed out."""
    output: str
    seconds: float
    wrong: str | None = None
    """What the case's own check found wrong after an exit 0; None when nothing."""


@dataclass(frozen=True)
class Case:
    group: str
    name: str
    driver: Callable[[Audit], Outcome]
    expect_error: bool = True
    """Exit 0 is wrong (a bad input accepted) unless the driver's check says otherwise."""
    late_ok: bool = False
    """A training stage before the error is the point of the case (kills, signals)."""


def base_config() -> dict[str, Any]:
    config = yaml.safe_load(SMOKE.read_text())
    config["seeds"] = 1
    config["unlearn"]["methods"] = ["ga"]
    config["unlearn"]["variants"] = {"lora": {"lora": True, "lr": 2.0e-3}}
    del config["unlearn"]["modality_study"]
    return config


def config_text(config: Any) -> str:
    return RAW.sub(r"\1", yaml.safe_dump(config, sort_keys=False))


def training_ran(output: str) -> bool:
    """Whether a training stage finished (not merely "already done") in ``output``."""
    skipped = False
    for line in output.splitlines():
        if "already done" in line:
            skipped = True
        match = STAGE_LINE.match(line)
        if not match:
            continue
        if line.endswith(" ..."):
            skipped = False
        elif match.group(1).startswith(TRAINING) and not skipped:
            return True
    return False


def message(output: str) -> str:
    """The line that says what went wrong: an ``error:`` line, else a traceback's last line,
    else the last line."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    errors = [line for line in lines if "error:" in line.lower()]
    if errors:
        return errors[-1]
    if "Traceback" in output:
        return next((line for line in reversed(lines) if re.match(r"^[\w.]+(Error|Exception|"
                     r"Interrupt|Exit)\b", line)), lines[-1])
    return lines[-1] if lines else ""


def classify(case: Case, outcome: Outcome) -> str:
    if outcome.rc is None:
        return "hang"
    if "Traceback (most recent call last)" in outcome.output:
        return "traceback"
    if outcome.rc == 0:
        if outcome.wrong is not None:
            return "silently-wrong-or-stale"
        return "silently-wrong-or-stale" if case.expect_error else "correct"
    if not case.expect_error:  # a failure where success is right
        return "clear-but-late" if training_ran(outcome.output) else "clear-and-early"
    late = training_ran(outcome.output) and not case.late_ok
    return "clear-but-late" if late else "clear-and-early"


def mtimes(run: Path) -> dict[str, int | None]:
    return {name: (run / name).stat().st_mtime_ns if (run / name).exists() else None
            for name in MARKERS}


def changed(before: dict[str, int | None], after: dict[str, int | None]) -> set[str]:
    return {name for name in before if before[name] != after[name]}


class Running:
    """A ``clearbench`` subprocess whose output a thread collects."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.process = process
        self.started = time.perf_counter()
        self.lines: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)

    def wait_for(self, pattern: str, timeout: float = TIMEOUT) -> bool:
        """Wait until an output line matches ``pattern``; False if the process ended or
        ``timeout`` passed first."""
        end = time.perf_counter() + timeout
        seen = 0
        while time.perf_counter() < end:
            lines = self.lines[seen:]
            if any(re.search(pattern, line) for line in lines):
                return True
            seen += len(lines)
            if self.process.poll() is not None and not self.reader.is_alive():
                return False
            time.sleep(0.02)
        return False

    def signal(self, number: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, number)

    def finish(self, timeout: float = TIMEOUT) -> Outcome:
        """Wait for the end (killing the group after ``timeout`` s from now)."""
        try:
            rc: int | None = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.signal(signal.SIGKILL)
            self.process.wait()
            rc = None
        self.reader.join()
        return Outcome(rc, "".join(self.lines), time.perf_counter() - self.started)


class Audit:
    """The cases' working folder, the prepared run and the ``clearbench`` subprocess."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            [str(ROOT / "src"), *filter(None, [os.environ.get("PYTHONPATH")])]),
            "HF_HUB_OFFLINE": "1", "TQDM_DISABLE": "1", "PYTHONUNBUFFERED": "1"}
        self._prepared: Path | None = None
        self.count = 0

    def fresh(self, name: str) -> Path:
        self.count += 1
        slug = re.sub(r"[^\w.-]", "_", name)[:40]
        path = self.folder / f"{self.count:03d}-{slug}"
        path.mkdir()
        return path

    def start(self, *args: str) -> Running:
        return Running(subprocess.Popen(
            [sys.executable, "-m", "clearbench", *args], cwd=self.folder, env=self.env,
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True, start_new_session=True))

    def clearbench(self, *args: str, timeout: float = TIMEOUT) -> Outcome:
        return self.start(*args).finish(timeout)

    def config(self, folder: Path, config: Any, name: str = "config.yaml") -> Path:
        path = folder / name
        path.write_text(config if isinstance(config, str) else config_text(config))
        return path

    def prepared(self) -> Path:
        """The prepared run (built on first use); cases read it, or change it in place
        inside :meth:`in_place`."""
        if self._prepared is None:
            folder = self.folder / "prepared"
            folder.mkdir()
            config = self.config(folder, base_config())
            outcome = self.clearbench("run", "--config", str(config), "--out",
                                      str(folder / "run"), timeout=900)
            if outcome.rc != 0:
                raise SystemExit(f"the prepared run failed:\n{outcome.output[-3000:]}")
            shutil.copytree(folder / "run", folder / "backup", symlinks=True)
            self._prepared = folder / "run"
        return self._prepared

    @contextlib.contextmanager
    def in_place(self) -> Iterator[tuple[Path, Path]]:
        """The prepared run where it was built and its config file: (run, config); restored
        from its backup (mtimes kept) afterwards."""
        run = self.prepared()
        try:
            yield run, run.parent / "config.yaml"
        finally:
            shutil.rmtree(run)
            shutil.copytree(run.parent / "backup", run, symlinks=True)
            self.config(run.parent, base_config())

    def copy_run(self, name: str) -> tuple[Path, Path]:
        """A copy of the prepared run elsewhere (mtimes kept) and a config for it."""
        folder = self.fresh(name)
        run = folder / "run"
        shutil.copytree(self.prepared(), run, symlinks=True)
        return run, self.config(folder, base_config())


CASES: list[Case] = []


def case(group: str, name: str, **options: Any) -> Callable[[Callable[[Audit], Outcome]],
                                                            Callable[[Audit], Outcome]]:
    def register(driver: Callable[[Audit], Outcome]) -> Callable[[Audit], Outcome]:
        CASES.append(Case(group, name, driver, **options))
        return driver
    return register


# --- config values: `clearbench run --config` on a fresh folder ------------------------------


def dig(config: dict[str, Any], dotted: str) -> tuple[dict[str, Any], str]:
    *parents, key = dotted.split(".")
    for part in parents:
        config = config.setdefault(part, {})
    return config, key


def config_case(name: str, changes: dict[str, Any], check: Callable[[Path], str | None] | None
                = None, drop: tuple[str, ...] = (), extra: tuple[str, ...] = ()) -> None:
    """A run of the base config with ``changes`` (dotted keys; ``drop``: keys removed);
    ``check(run)`` after an exit 0 (then a bad value is fine if it was read right)."""

    def driver(audit: Audit) -> Outcome:
        folder = audit.fresh(name)
        config = base_config()
        for dotted in drop:
            parent, key = dig(config, dotted)
            parent.pop(key, None)
        for dotted, value in changes.items():
            parent, key = dig(config, dotted)
            parent[key] = value
        path = audit.config(folder, config)
        outcome = audit.clearbench("run", "--config", str(path), "--out", str(folder / "run"),
                                   *extra)
        if outcome.rc == 0 and check is not None:
            outcome.wrong = check(folder / "run")
        elif outcome.rc == 0:
            outcome.wrong = "the bad value was accepted"
        return outcome

    CASES.append(Case("config", name, driver, expect_error=check is None))


def recorded(path: str, *keys: str, want: Any) -> Callable[[Path], str | None]:
    """A check: the JSON file ``path`` of the run holds ``want`` (same type) at ``keys``."""

    def check(run: Path) -> str | None:
        value: Any = json.loads((run / path).read_text())
        for key in keys:
            value = value.get(key) if isinstance(value, dict) else None
        if value != want or type(value) is not type(want):
            return f"{path} {'.'.join(keys)} = {value!r}, not {want!r}"
        return None

    return check


def lora_false(run: Path) -> str | None:
    variants = json.loads((run / "results.json").read_text())["run"]["variants"]
    return None if variants["lora"]["lora"] is False else (
        f"lora: \"false\" ran with lora = {variants['lora']['lora']!r}")


def ga_once(run: Path) -> str | None:
    rows = json.loads((run / "results.json").read_text())["rows"]
    count = sum(row["method"] == "ga" for row in rows)
    return None if count == 1 else f"ga listed twice: {count} ga rows in results.json"


LR = raw("2e-3")
config_case("base.lr: 2e-3", {"base.lr": LR}, recorded("base/base.json", "config", "lr",
                                                       want=0.002))
config_case("finetune.lr: 2e-3", {"finetune.lr": LR},
            recorded("vanilla/training.json", "train_settings", "lr", want=0.002))
config_case("unlearn.lr: 2e-3", {"unlearn.lr": LR},
            recorded(f"{UNLEARNED}/unlearning.json", "recipe_settings", "lr", want=0.002),
            drop=("unlearn.variants.lora.lr",))
config_case("unlearn.variants.lora.lr: 2e-3", {"unlearn.variants.lora.lr": LR},
            recorded(f"{UNLEARNED}/unlearning.json", "recipe_settings", "lr", want=0.002))
config_case('finetune.epochs: "five"', {"finetune.epochs": "five"})
config_case("finetune.epochs: 0", {"finetune.epochs": 0})
config_case("base.epochs: 0", {"base.epochs": 0})
config_case("unlearn.epochs: 0", {"unlearn.epochs": 0})
config_case("finetune.lr: -1e-3", {"finetune.lr": -1e-3})
config_case("unlearn.variants.lora.lr: -2e-3", {"unlearn.variants.lora.lr": -2e-3})
config_case("unlearn.batch_size: 0", {"unlearn.batch_size": 0})
config_case("eval.batch_size: 0", {"eval.batch_size": 0})
config_case("eval.max_new_tokens: -1", {"eval.max_new_tokens": -1})
config_case("variants.lora.lora_rank: eight", {"unlearn.variants.lora.lora_rank": raw("eight")})
config_case('variants.lora.lora: "false"', {"unlearn.variants.lora.lora": "false"}, lora_false)
config_case("forget_splits: []", {"forget_splits": []})
config_case("forget_splits: [forget20]", {"forget_splits": ["forget20"]})
config_case("unlearn.methods: [ga, ga]", {"unlearn.methods": ["ga", "ga"]}, ga_once)
config_case("unlearn.methods: [gaa]", {"unlearn.methods": ["gaa"]})
config_case("unlearn.methods: []", {"unlearn.methods": []})
config_case("options typo npo.betta", {"unlearn.methods": ["npo"],
                                       "unlearn.options": {"npo": {"betta": 0.5}}})
config_case('options as string npo: "beta=0.5"', {"unlearn.methods": ["npo"],
                                                  "unlearn.options": {"npo": "beta=0.5"}})
config_case("jobs: 0", {"jobs": 0})
config_case("seeds: 0", {"seeds": 0})
config_case('seed: "zero"', {"seed": "zero"})
config_case("unknown top-level key", {"learning_rate": 0.001})
config_case("unknown key base.epoch", {"base.epoch": 1})
config_case("unknown key in a variant", {"unlearn.variants.lora.lora_rnk": 4})
config_case("unlearn.variants: {}", {"unlearn.variants": {}})
config_case("modality_study: [audio]", {"unlearn.modality_study": ["audio"]})
config_case('finetune.recipe: "huge"', {"finetune.recipe": "huge"})
config_case("base.arch: gpt", {"base.arch": "gpt"})
config_case("data.synth.persons: 0", {"data.synth.persons": 0})
config_case("dtype: float8", {"dtype": "float8"})
config_case("device: cuda (CPU torch)", {"device": "cuda"})
config_case('cv.enabled: "yes" (dry run)', {"cv.enabled": "yes"}, extra=("--dry-run",))
config_case("cv.shadows: -1 (dry run)", {"cv": {"enabled": True, "shadows": -1}},
            extra=("--dry-run",))
config_case("cv unknown key (dry run)", {"cv": {"enabled": True, "shadowz": 3}},
            extra=("--dry-run",))
config_case("cv.out set (dry run)", {"cv": {"enabled": True, "out": "elsewhere"}},
            extra=("--dry-run",))


def file_config_case(name: str, text: str | None) -> None:
    """``run --config`` on a file holding ``text`` (None: the config path is a folder)."""

    def driver(audit: Audit) -> Outcome:
        folder = audit.fresh(name)
        path = folder / "config.yaml"
        if text is None:
            path.mkdir()
        else:
            path.write_text(text)
        outcome = audit.clearbench("run", "--config", str(path), "--out", str(folder / "run"))
        outcome.wrong = "accepted" if outcome.rc == 0 else None
        return outcome

    CASES.append(Case("config", name, driver))


file_config_case("YAML syntax error", config_text(base_config()).replace("seeds: 1",
                                                                         "seeds: [1"))
file_config_case("empty config file", "")
file_config_case("config is a list", "- seed: 0\n- seeds: 1\n")
file_config_case("--config a folder", None)


@case("config", "--config missing")
def _missing_config(audit: Audit) -> Outcome:
    folder = audit.fresh("missing-config")
    return audit.clearbench("run", "--config", str(folder / "nope.yaml"), "--out",
                            str(folder / "run"))


# --- CLI errors of each subcommand ------------------------------------------------------------


def cli_case(name: str, args: Callable[[Audit, Path], list[str]],
             prepare: Callable[[Audit, Path], None] | None = None) -> None:
    """A subcommand on a bad input: exit 0 is wrong."""

    def driver(audit: Audit) -> Outcome:
        folder = audit.fresh(name)
        if prepare is not None:
            prepare(audit, folder)
        outcome = audit.clearbench(*args(audit, folder))
        outcome.wrong = "the bad input was accepted" if outcome.rc == 0 else None
        return outcome

    CASES.append(Case("cli", name, driver))


def data(audit: Audit) -> str:
    return str(audit.prepared() / "data")


def model(audit: Audit, name: str = "vanilla") -> str:
    return str(audit.prepared() / name)


def copied(source: str, target: str, change: Callable[[Path], None]) -> Callable[[Audit, Path],
                                                                                   None]:
    """Prepare a case by copying a folder of the prepared run to ``target`` and changing it."""

    def prepare(audit: Audit, folder: Path) -> None:
        shutil.copytree(audit.prepared() / source, folder / target)
        change(folder / target)

    return prepare


def truncate(path: Path, keep: int = 100) -> None:
    path.write_bytes(path.read_bytes()[:keep])


def null_caption(folder: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = folder / "forget10_perturbed" / "train-00000-of-00001.parquet"  # eval reads it
    table = pq.read_table(path)
    captions = table.column("caption").to_pylist()
    captions[0] = None
    index = table.schema.get_field_index("caption")
    pq.write_table(table.set_column(index, "caption", pa.array(captions, pa.string())), path)


def eval_args(audit: Audit, folder: Path, model_dir: str, data_dir: str | None = None
              ) -> list[str]:
    return ["eval", "--model", model_dir, "--data", data_dir or data(audit), "--out",
            str(folder / "eval"), "--limit", "2"]


def unlearn_args(audit: Audit, folder: Path, *extra: str) -> list[str]:
    return ["unlearn", "--model", model(audit), "--data", data(audit), "--method", "ga",
            "--out", str(folder / "out"), "--recipe", "mini", *extra]


def finetune_args(audit: Audit, folder: Path, *extra: str) -> list[str]:
    return ["finetune", "--model", model(audit, "base"), "--data", data(audit), "--out",
            str(folder / "out"), "--recipe", "mini", *extra]


def readonly(audit: Audit, folder: Path) -> str:
    if os.geteuid() == 0:  # root writes through permissions: use a read-only file system
        return "/proc/clearbench-audit/out"
    (folder / "ro").mkdir()
    (folder / "ro").chmod(0o555)
    return str(folder / "ro" / "out")


cli_case("eval --model missing folder", lambda a, f: eval_args(a, f, str(f / "nope")))
cli_case("eval --model runs/vanila (typo)",
         lambda a, f: eval_args(a, f, str(a.prepared() / "vanila")))
cli_case("eval unfinished fine-tune folder",
         lambda a, f: eval_args(a, f, str(f / "vanilla")),
         copied("vanilla", "vanilla", lambda d: (d / "training.json").unlink()))
cli_case("eval truncated model.safetensors",
         lambda a, f: eval_args(a, f, str(f / "vanilla")),
         copied("vanilla", "vanilla", lambda d: truncate(d / "model.safetensors")))
cli_case("eval missing config.json", lambda a, f: eval_args(a, f, str(f / "vanilla")),
         copied("vanilla", "vanilla", lambda d: (d / "config.json").unlink()))
cli_case("eval corrupt data parquet",  # a config the evaluation reads
         lambda a, f: eval_args(a, f, model(a), str(f / "data")),
         copied("data", "data", lambda d: truncate(d / "forget10_perturbed" /
                                                   "train-00000-of-00001.parquet", 200)))
cli_case("eval data with a null caption",
         lambda a, f: eval_args(a, f, model(a), str(f / "data")),
         copied("data", "data", null_caption))
cli_case("eval missing TOFU folder",
         lambda a, f: eval_args(a, f, model(a), str(f / "data")),
         copied("data", "data", lambda d: shutil.rmtree(d / "tofu")))
cli_case("eval --out an existing file",
         lambda a, f: ["eval", "--model", model(a), "--data", data(a), "--out", str(f / "file"),
                       "--limit", "2"],
         lambda a, f: (f / "file").write_text("x"))
cli_case("eval --batch-size 0", lambda a, f: [*eval_args(a, f, model(a)), "--batch-size", "0"])
cli_case("eval --tasks nosuchtask", lambda a, f: [*eval_args(a, f, model(a)), "--tasks", "nope"])
cli_case("eval --device cuda (CPU torch)",
         lambda a, f: [*eval_args(a, f, model(a)), "--device", "cuda"])
cli_case("score --gold given vanilla's eval",
         lambda a, f: ["score", "--eval", str(a.prepared() / UNLEARNED / "eval-forget10"),
                       "--gold", str(a.prepared() / "vanilla" / "eval-forget10"),
                       "--out", str(f / "scores")])
cli_case("score --eval missing",
         lambda a, f: ["score", "--eval", str(f / "nope"), "--gold",
                       str(a.prepared() / "gold-forget10" / "eval-forget10"), "--out", str(f)])
cli_case("finetune --model missing", lambda a, f: [*finetune_args(a, f)[:2], str(f / "nope"),
                                                   *finetune_args(a, f)[3:]])
cli_case("finetune --out an existing file",
         lambda a, f: [*finetune_args(a, f)[:-3], str(f / "file"), "--recipe", "mini"],
         lambda a, f: (f / "file").write_text("x"))
cli_case("finetune --out read-only folder",
         lambda a, f: [*finetune_args(a, f)[:-3], readonly(a, f), "--recipe", "mini"])
cli_case("finetune --epochs 0", lambda a, f: finetune_args(a, f, "--epochs", "0"))
cli_case("finetune --lr nan", lambda a, f: finetune_args(a, f, "--lr", "nan"))
cli_case("finetune --split nosuch", lambda a, f: finetune_args(a, f, "--split", "nosuch+tofu"))
cli_case("unlearn --method nosuch",
         lambda a, f: [*unlearn_args(a, f)[:6], "nosuch", *unlearn_args(a, f)[7:]])
cli_case("unlearn --option beta (no =)", lambda a, f: unlearn_args(a, f, "--option", "beta"))
cli_case("unlearn --option betta=0.5 (typo)",
         lambda a, f: unlearn_args(a, f, "--option", "betta=0.5"))
cli_case("unlearn --epochs 0", lambda a, f: unlearn_args(a, f, "--epochs", "0"))
cli_case("unlearn --lr -1", lambda a, f: unlearn_args(a, f, "--lr", "-1"))
cli_case("unlearn --model base (not fine-tuned)",
         lambda a, f: [*unlearn_args(a, f)[:2], model(a, "base"), *unlearn_args(a, f)[3:]])
cli_case("base --data missing",
         lambda a, f: ["base", "--data", str(f / "nope"), "--out", str(f / "base")])
cli_case("data synth --persons 0",
         lambda a, f: ["data", "synth", "--out", str(f / "d"), "--persons", "0"])
cli_case("data synth --out an existing file",
         lambda a, f: ["data", "synth", "--out", str(f / "file")],
         lambda a, f: (f / "file").write_text("x"))
cli_case("run --out an existing file",
         lambda a, f: ["run", "--preset", "smoke", "--out", str(f / "file")],
         lambda a, f: (f / "file").write_text("x"))
cli_case("run --jobs 0", lambda a, f: ["run", "--preset", "smoke", "--out", str(f / "run"),
                                       "--jobs", "0"])
cli_case("report without results.json", lambda a, f: ["report", str(f)])
cli_case("report corrupt results.json", lambda a, f: ["report", str(f)],
         lambda a, f: (f / "results.json").write_text('{"schema": 2, "rows": ['))
cli_case("compare RUN_A missing", lambda a, f: ["compare", str(f / "nope"), str(a.prepared())])


def compare_case(name: str, change: Callable[[dict[str, Any]], None]) -> None:
    """``compare`` of the prepared run with a copy of its results.json changed by ``change``:
    it must list a difference."""

    def driver(audit: Audit) -> Outcome:
        folder = audit.fresh(name)
        results = json.loads((audit.prepared() / "results.json").read_text())
        change(results)
        (folder / "results.json").write_text(json.dumps(results))
        outcome = audit.clearbench("compare", str(audit.prepared()), str(folder))
        if outcome.rc == 0 and "no differences" in outcome.output:
            outcome.wrong = "compare says no differences"
        return outcome

    CASES.append(Case("cli", name, driver, expect_error=False))


def ga_entry(results: dict[str, Any]) -> dict[str, Any]:
    return next(e for e in results["summary"] if e["method"] == "ga")


def nan_score(results: dict[str, Any]) -> None:
    ga_entry(results)["scores"]["forget_quality"]["mean"] = float("nan")
    next(r for r in results["rows"] if r["method"] == "ga")["scores"]["forget_quality"] = None


compare_case("compare with a NaN score", nan_score)
compare_case("compare with a score missing", lambda r: ga_entry(r)["scores"].pop("retain"))
compare_case("compare with a row missing",
             lambda r: r["rows"].remove(next(x for x in r["rows"] if x["method"] == "ga")))


# --- run faults -------------------------------------------------------------------------------


@case("run", "second run on the same --out", late_ok=True)
def _second_run(audit: Audit) -> Outcome:
    folder = audit.fresh("second-run")
    config = audit.config(folder, base_config())
    first = audit.start("run", "--config", str(config), "--out", str(folder / "run"))
    found = first.wait_for(r"\] fine-tune vanilla \.\.\.")
    outcome = audit.clearbench("run", "--config", str(config), "--out", str(folder / "run"))
    rest = first.finish()
    if outcome.rc == 0:
        outcome.wrong = ("two runs wrote one folder at once" if found and rest.rc == 0
                         else f"first run: exit {rest.rc}")
    return outcome


@case("run", "Ctrl-C (SIGINT to the group) mid-run", late_ok=True)
def _sigint(audit: Audit) -> Outcome:
    folder = audit.fresh("sigint")
    config = audit.config(folder, base_config())
    running = audit.start("run", "--config", str(config), "--out", str(folder / "run"))
    running.wait_for(r"\] fine-tune vanilla \.\.\.")
    time.sleep(0.5)
    running.signal(signal.SIGINT)
    outcome = running.finish(timeout=30)
    if outcome.rc == 0:
        outcome.wrong = "exit 0 after Ctrl-C"
    return outcome


def comparable(results: dict[str, Any]) -> Any:
    """What two runs of one config must agree on: scores and metrics, not paths or seconds."""
    keep = ("method", "variant", "modality", "seed", "status", "scores", "tasks")
    return ([{k: row[k] for k in keep} for row in results["rows"]],
            [{k: e[k] for k in ("method", "variant", "status", "scores")}
             for e in results["summary"]])


@case("run", "SIGKILL mid-run, rerun resumes, same results", expect_error=False)
def _sigkill(audit: Audit) -> Outcome:
    folder = audit.fresh("sigkill")
    config = audit.config(folder, base_config())
    started = time.perf_counter()
    running = audit.start("run", "--config", str(config), "--out", str(folder / "run"))
    running.wait_for(r"\] fine-tune gold \(forget10\) \.\.\.")
    time.sleep(1.0)
    running.signal(signal.SIGKILL)
    running.finish()
    outcome = audit.clearbench("run", "--config", str(config), "--out", str(folder / "run"))
    outcome.seconds = time.perf_counter() - started
    if outcome.rc == 0:
        mine = json.loads((folder / "run" / "results.json").read_text())
        reference = json.loads((audit.prepared() / "results.json").read_text())
        if comparable(mine) != comparable(reference):
            outcome.wrong = "results differ from an uninterrupted run"
    return outcome


@case("run", "kill between results.json and the report", expect_error=False)
def _kill_before_report(audit: Audit) -> Outcome:
    with audit.in_place() as (run, config):
        return _kill_report(audit, run, config)


def _kill_report(audit: Audit, run: Path, config: Path) -> Outcome:
    changed_config = base_config()
    changed_config["unlearn"]["epochs"] = 2
    audit.config(config.parent, changed_config)
    results = run / "results.json"
    before = results.stat().st_mtime_ns
    started = time.perf_counter()
    running = audit.start("run", "--config", str(config), "--out", str(run))
    while running.process.poll() is None and results.stat().st_mtime_ns == before:
        time.sleep(0.005)
    running.signal(signal.SIGKILL)
    running.finish()
    late = (run / "report.md").stat().st_mtime_ns >= results.stat().st_mtime_ns
    outcome = audit.clearbench("run", "--config", str(config), "--out", str(run))
    outcome.seconds = time.perf_counter() - started
    if outcome.rc == 0:
        fresh = audit.fresh("kill-report-rebuilt") / "run"  # the report names its folder
        fresh.mkdir()
        shutil.copy2(results, fresh / "results.json")
        rebuilt = audit.clearbench("report", str(fresh))
        if rebuilt.rc != 0:
            outcome.wrong = f"report of the results failed: {message(rebuilt.output)}"
        elif (fresh / "report.md").read_text() != (run / "report.md").read_text():
            outcome.wrong = "report.md does not show results.json after the rerun"
        elif late:
            outcome.wrong = "the kill came after the report (race lost); nothing checked"
    return outcome


# --- staleness: reruns of the prepared run, changed in place ---------------------------


def rerun_case(name: str, change: Callable[[Path, dict[str, Any]], None],
               check: Callable[[set[str], str, Path], str | None], comment: str = "") -> None:
    """In the prepared run, ``change(run, config)`` (``comment`` appended to the config
    text), rerun, then ``check(changed markers, output, run)``."""

    def driver(audit: Audit) -> Outcome:
        with audit.in_place() as (run, path):
            before = mtimes(run)
            config = base_config()
            change(run, config)
            audit.config(path.parent, config_text(config) + comment)
            outcome = audit.clearbench("run", "--config", str(path), "--out", str(run))
            if outcome.rc == 0:
                outcome.wrong = check(changed(before, mtimes(run)), outcome.output, run)
            return outcome

    CASES.append(Case("staleness", name, driver, expect_error=False))


def nothing_redone(redone: set[str], output: str, run: Path) -> str | None:
    return f"redone: {', '.join(sorted(redone))}" if redone else None


def all_redone(redone: set[str], output: str, run: Path) -> str | None:
    missed = set(MARKERS) - redone
    return f"not redone: {', '.join(sorted(missed))}" if missed else None


def vanilla_redone(redone: set[str], output: str, run: Path) -> str | None:
    return None if "vanilla/training.json" in redone else "vanilla kept (already done)"


def data_regenerated(redone: set[str], output: str, run: Path) -> str | None:
    """The run's CLEAR-mini must be what the generator writes: an edit is undone, and with the
    same content nothing else is redone (a data *source* edited in place is other data: every
    stage reading it is redone, tests/faults/test_identity.py)."""
    if "regenerating" not in output:
        return "the edit was not noticed"
    return f"redone: {', '.join(sorted(redone))}" if redone else None


def only_unlearning(redone: set[str], output: str, run: Path) -> str | None:
    want = {f"{UNLEARNED}/unlearning.json", f"{UNLEARNED}/eval-forget10/eval.json"}
    return None if redone == want else f"redone: {', '.join(sorted(redone)) or 'nothing'}"


def set_base_epochs(run: Path, config: dict[str, Any]) -> None:
    config["base"]["epochs"] = 2


def change_caption(run: Path, config: dict[str, Any]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    for split in ("full", "full+tofu"):
        path = run / "data" / split / "train-00000-of-00001.parquet"
        table = pq.read_table(path)
        captions = table.column("caption").to_pylist()
        first = next(i for i, c in enumerate(captions) if c)
        captions[first] = captions[first] + " Changed."
        index = table.schema.get_field_index("caption")
        pq.write_table(table.set_column(index, "caption", pa.array(captions, pa.string())), path)


def report_current(redone: set[str], output: str, run: Path) -> str | None:
    missing = [n for n in ("results.json", "report.html", "report.md") if not (run / n).is_file()]
    return f"not rebuilt: {', '.join(missing)}" if missing else None


rerun_case("rerun unchanged", lambda run, config: None, nothing_redone)
rerun_case("change base.epochs, rerun", set_base_epochs, all_redone)
rerun_case("change a caption in RUN/data, rerun", change_caption, data_regenerated)
rerun_case("change the variant's lr, rerun",
           lambda run, config: config["unlearn"]["variants"]["lora"].update(lr=1e-3),
           only_unlearning)
rerun_case("comment-only config change, rerun", lambda run, config: None, nothing_redone,
           comment="# a comment\n")
rerun_case("delete vanilla/model.safetensors, rerun",
           lambda run, config: (run / "vanilla" / "model.safetensors").unlink(), vanilla_redone)
rerun_case("truncate vanilla/model.safetensors, rerun",
           lambda run, config: truncate(run / "vanilla" / "model.safetensors"), vanilla_redone)
rerun_case("corrupt an eval.json, rerun",
           lambda run, config: truncate(run / "vanilla" / "eval-forget10" / "eval.json", 10),
           lambda redone, output, run: None if "vanilla/eval-forget10/eval.json" in redone
           else "the corrupt eval.json was kept")
rerun_case("delete results.json and report.html, rerun",
           lambda run, config: [(run / n).unlink() for n in ("results.json", "report.html")],
           report_current)


def moved_case(name: str, move: bool) -> None:
    def driver(audit: Audit) -> Outcome:
        run, path = audit.copy_run(name)
        before = mtimes(run)
        target = run.parent / "elsewhere"
        if move:
            run.rename(target)
        else:
            shutil.copytree(run, target, symlinks=True)
        outcome = audit.clearbench("run", "--config", str(path), "--out", str(target))
        if outcome.rc == 0:
            outcome.wrong = nothing_redone(changed(before, mtimes(target)), outcome.output,
                                           target)
        return outcome

    CASES.append(Case("staleness", name, driver, expect_error=False))


moved_case("move the run folder, rerun", move=True)
moved_case("copy the run folder, rerun the copy", move=False)


# --- the audit ---------------------------------------------------------------------------


def run_case(audit: Audit, item: Case) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        outcome = item.driver(audit)
    except Exception as err:  # the audit's own preparation failed: say so, do not stop
        outcome = Outcome(-1, f"audit error: {type(err).__name__}: {err}",
                          time.perf_counter() - started)
    kind = "audit-error" if outcome.output.startswith("audit error") else classify(item, outcome)
    first = outcome.wrong or message(outcome.output)
    return {"group": item.group, "case": item.name, "exit": outcome.rc, "message": first,
            "class": kind, "seconds": round(outcome.seconds, 1)}


def table(rows: list[dict[str, Any]]) -> str:
    header = ("case", "exit code", "first line of the message", "class", "seconds")
    cells = [(f"{r['group']}: {r['case']}", "timeout" if r["exit"] is None else str(r["exit"]),
              r["message"][:100].replace("|", "/"), r["class"], f"{r['seconds']:.1f}")
             for r in rows]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in cells]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default=None, metavar="PATTERN",
                        help="run only the cases whose 'group: name' matches this regex")
    parser.add_argument("--json", type=Path, default=None, metavar="OUT",
                        help="write the table as JSON")
    parser.add_argument("--keep", type=Path, default=None, metavar="DIR",
                        help="work in DIR and keep it (default: a temporary folder)")
    args = parser.parse_args(argv)
    selected = [c for c in CASES if args.only is None
                or re.search(args.only, f"{c.group}: {c.name}")]
    with tempfile.TemporaryDirectory(prefix="clearbench-faults-") as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        audit = Audit(folder)
        rows = []
        for i, item in enumerate(selected, 1):
            row = run_case(audit, item)
            rows.append(row)
            print(f"[{i}/{len(selected)}] {row['group']}: {row['case']}: {row['class']} "
                  f"({row['seconds']:.1f} s)", flush=True)
    print("\n" + table(rows))
    totals = Counter(row["class"] for row in rows)
    print("\ntotals: " + ", ".join(f"{name} {totals[name]}" for name in
                                   (*CLASSES, "audit-error") if totals[name]))
    if args.json is not None:
        args.json.write_text(json.dumps({"cases": rows, "totals": dict(totals)}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
