"""``python -m train``: the ``bayling-train`` command."""

from .cli import run

run()
