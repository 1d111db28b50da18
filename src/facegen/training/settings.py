"""The named choices of a run's training block, once for the code: the schema lists them for the config
and tests/test_enums.py holds the two equal. No torch here, so anything may import them."""

from __future__ import annotations

OPTIMIZERS = ("adam", "sgd")  # sgd: plain gradient descent, as the HVAE paper used
SCHEDULES = ("none", "cosine", "step")
# The arithmetic of a training step (facegen.training.precision says what each is); a config may also
# ask for auto, which times the candidates and picks one of these.
PRECISIONS = ("fp32", "channels_last", "bf16")
PRECISION_CHOICES = ("auto", *PRECISIONS)
# Whether a training step runs compiled by inductor (facegen.training.compilation says what is compiled);
# auto compiles a run only when the time its measured speed-up saves repays the measured compile time.
COMPILE_MODES = ("on", "off")
COMPILE_CHOICES = ("auto", *COMPILE_MODES)
