"""The vision-only track's unlearning methods: one module per method, registered in
:data:`CV_METHODS`."""

# isort: off
# Importing a module registers its method; the import order is the registration order, which is
# the default order of `clearbench cv run`'s methods and of its table's rows.
from clearbench.cv.methods import (  # noqa: F401
    retain_ft,
    neggrad,
    scrub,
    scrub_bio,
    twins,
    rmu,
    dpo,
    llmu,
    sparsity,
)
# isort: on
from clearbench.cv.methods.base import (
    CV_METHODS,
    CVMethod,
    UnlearnBatch,
    build_cv_method,
    ce,
    reference_embeddings,
    register,
)
from clearbench.cv.methods.dpo import DPO
from clearbench.cv.methods.llmu import LLMU
from clearbench.cv.methods.neggrad import NegGrad
from clearbench.cv.methods.retain_ft import RetainFT
from clearbench.cv.methods.rmu import RMU
from clearbench.cv.methods.scrub import Scrub
from clearbench.cv.methods.scrub_bio import ScrubBio
from clearbench.cv.methods.sparsity import Sparsity
from clearbench.cv.methods.twins import Twins

__all__ = [
    "CV_METHODS",
    "DPO",
    "LLMU",
    "RMU",
    "CVMethod",
    "NegGrad",
    "RetainFT",
    "Scrub",
    "ScrubBio",
    "Sparsity",
    "Twins",
    "UnlearnBatch",
    "build_cv_method",
    "ce",
    "reference_embeddings",
    "register",
]
