"""``python -m ada_governance`` runs the ``ada-governance`` command."""

from .cli import main

main()
