"""softmod: multi-task reinforcement learning with soft modularization on Meta-World."""

__version__ = "0.1.0"
