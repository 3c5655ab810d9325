"""CLEAR-mini: the offline, synthetic CLEAR data set (``clearbench data synth``)."""

from clearbench.data.synth.generate import SynthConfig, synthesize

__all__ = ["SynthConfig", "synthesize"]
