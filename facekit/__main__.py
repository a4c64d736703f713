"""``python -m facekit`` is the ``facekit`` command."""
from facekit.app.cli import main

main()
