"""CLEAR/TOFU data: schemas, loading (hub id or local folder), prompts, training views and
the offline CLEAR-mini generator (:mod:`clearbench.data.synth`)."""
