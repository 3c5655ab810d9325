"""The run configs embedded in the package (``clearbench run --preset NAME``), in
``clearbench/configs/NAME.yaml``. A module of its own so the CLI lists them without importing
the pipeline."""

PRESETS: dict[str, str] = {
    "mini": "the default: the whole benchmark on CLEAR-mini, 3 seeds",
    "paper-tables": "mini plus the ℓ1 variant and the modality study",
    "full": "paper-tables plus every audit (membership, relearning, robustness) of every "
            "model",
    "tuned": "mini plus the tuning protocol: each method also at settings chosen on "
             "validation persons",
    "smoke": "every stage on a very small set, about a minute; its numbers mean nothing",
}
