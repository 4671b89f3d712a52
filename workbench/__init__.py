"""workbench: read the real artifacts of a PyTorch run and say, with evidence, what is wrong."""

__version__ = "0.1.0"
