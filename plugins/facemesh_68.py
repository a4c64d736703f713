"""FaceMesh vertex for each of the 68 iBUG-300W points (draft, being measured)."""
from __future__ import annotations

JAW = (127, 234, 93, 132, 58, 172, 136, 149, 152, 378, 365, 397, 288, 361, 323, 454, 356)
BROWS = (70, 63, 105, 66, 107, 336, 296, 334, 293, 300)
NOSE = (168, 197, 5, 4, 98, 97, 2, 326, 327)
EYES = (33, 160, 158, 133, 153, 144, 362, 385, 387, 263, 373, 380)
MOUTH = (61, 40, 37, 0, 267, 270, 291, 321, 314, 17, 84, 91,
         78, 81, 13, 311, 308, 402, 14, 178)

IBUG68_FROM_FACEMESH: tuple[int, ...] = JAW + BROWS + NOSE + EYES + MOUTH
GROUPS: dict[str, range] = {
    "jaw": range(0, 17), "brows": range(17, 27), "nose": range(27, 36),
    "eyes": range(36, 48), "mouth": range(48, 68),
}
assert len(IBUG68_FROM_FACEMESH) == 68
