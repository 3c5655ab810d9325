#!/usr/bin/env bash
# Set up (if needed) and run the main job on the embedded default (CLEAR-mini, tiny VLM).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
. .venv/bin/activate
exec clearbench run "$@"
