"""``python -m facekit`` is the ``facekit`` command."""
from facekit.app.entry import main

main()
