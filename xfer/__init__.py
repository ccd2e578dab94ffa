"""xfer: how many bytes of knowledge a byte-level LM carries from one language to another."""

__version__ = "0.1.0"
