#!/usr/bin/env bash
# Create .venv (once) with a CPU build of PyTorch and clearbench with its test extras.
# Idempotent: a second call only re-installs clearbench itself if pyproject.toml changed.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
# shellcheck disable=SC1091
. .venv/bin/activate
stamp=.venv/.clearbench-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  python -m pip install --quiet --upgrade pip
  # torch first and pinned: an unpinned torch (or peft alone) pulls a multi-GB CUDA build.
  python -m pip install --quiet "$TORCH_SPEC"
  python -m pip install --quiet "$TORCH_SPEC" -e ".[dev]"
  touch "$stamp"
fi
