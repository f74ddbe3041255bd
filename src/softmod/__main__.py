"""``python -m softmod`` runs the ``softmod`` command line."""

from softmod.cli import main

main()
