"""``python -m facekit`` is the ``facekit`` command."""
from facekit.cli import main

main()
