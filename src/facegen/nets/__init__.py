"""Fixed, pretrained networks used by losses and metrics (never trained, never checkpointed)."""
