"""Where a run folder keeps each track (``clearbench run``): the multimodal track at its top,
the others in folders of their own."""

TEXT_DIR = "text"
"""The text-only track's folder in a run (when the config enables it)."""
CV_DIR = "cv"
"""The vision-only track's folder in a run (when the config enables it)."""
