"""facegen: a reproducible study of low-resolution face generation under tight compute."""

__version__ = "0.1.0"
