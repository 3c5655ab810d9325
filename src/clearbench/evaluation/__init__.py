"""Evaluation: pure metrics, model-calling evaluators and the memorisation gate (spec §4–§5)."""
