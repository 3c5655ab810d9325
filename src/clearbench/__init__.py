"""clearbench: the CLEAR benchmark for multimodal machine unlearning.

Layout (dependencies point one way):
    data -> models -> training -> evaluation -> recipes -> cli
"""

__version__ = "0.1.0"
