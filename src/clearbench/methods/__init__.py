"""Unlearning methods (spec §3): one module per method, all registered in :data:`METHODS`."""

from clearbench.methods import (  # noqa: F401 - importing a module registers its method
    dpo,
    ga,
    gd,
    idk,
    kl,
    llmu,
    npo,
    retain_ft,
    rmu,
    scrub,
    sku,
)
from clearbench.methods.base import METHODS, UnlearningMethod, build_method

__all__ = ["METHODS", "UnlearningMethod", "build_method"]
