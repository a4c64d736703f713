"""Model ids, and the store that finds their weights."""
from facekit.models.spec import ModelFile, ModelSpec

__all__ = ["ModelFile", "ModelSpec"]
