"""Errors of the feature networks, below both the space registry and the networks it loads."""


class FeaturesUnavailable(RuntimeError):
    """Why a feature space cannot be computed on this machine; the message starts with "unavailable:"."""
