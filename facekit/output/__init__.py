"""Output: the alignments journal and file, face files with their PNG metadata, debug frames.

``FaceWriter`` is here too, where it was before the core was grouped by layer (``facekit.output``
was one module)."""
from facekit.output.face_files import REJECTED, FaceWriter

__all__ = ["REJECTED", "FaceWriter"]
