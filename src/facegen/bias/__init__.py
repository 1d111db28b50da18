"""Demographic bias analysis: who the models reconstruct worse, and who they generate less."""
