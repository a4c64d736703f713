"""Which FaceMesh vertices make each of the 68 iBUG-300W points.

Each iBUG point is one FaceMesh vertex, or the midpoint of two where the iBUG point lies between
two FaceMesh contours. Groups were chosen by the iBUG definition, then checked against the shared
landmark set (42 of its 43 PASCAL VOC faces matched by BlazeFace; 68 points from dlib's
iBUG-trained predictor) as mean point error over the inter-ocular distance (outer eye corners 36
and 45), after BlazeFace and two-pass FaceMesh. Figures read draft -> final.

- Jaw 0-16: iBUG's jaw points run evenly along the visible face contour from ear level (0, 16) to
  the chin (8), so the candidates are FaceMesh's face-oval (silhouette) vertices only, and each
  point takes the oval vertex nearest its arc-length position: 127/356 at ear level, 152 at the
  chin. The oval is denser on the cheek than along the jaw, so 93/323, 150/379 and 176/400 are
  skipped; the draft took consecutive oval vertices and drifted towards the ears (0.196 -> 0.106).
  What remains is systematic: dlib puts the lower jaw and chin about 0.07 inside the silhouette.
- Brows 17-26 (image-left brow outer to inner, then image-right brow inner to outer): FaceMesh
  outlines each brow with an upper (70 63 105 66 107) and a lower (46 53 52 65 55) contour of five
  vertices end to end, like iBUG's five. The upper one runs along or just above the top of the
  hairs and iBUG's points fall between the two, so each point is the midpoint of an upper and a
  lower vertex (upper alone 0.062, midpoints 0.053; the lower alone is no better than the upper).
- Nose 27-35: the bridge 168 (between the eyes), 197, 5, and 4 (just above the tip, where iBUG 30
  falls on the arc); the base 240/460 on the lower edge of each nostril wing, 97/326 beside the
  columella, 2 at its base (subnasale). 240/460 sit next to the alar-crease vertices 98/327 and
  fit slightly better (0.042 -> 0.040).
- Eyes 36-47: corners 33/133 and 362/263, lid points a third and two thirds along each lid
  (160 158, 153 144; 385 387, 373 380). dlib places the outer corners a little lower, on the lower
  lid, but the corner is the iBUG definition and the alignment anchor, so they stay (0.044).
- Mouth 48-67: outer corners 61/291, Cupid's-bow peaks 37/267, midline 0/17, and 39/269 halfway
  from corner to peak; the lower-lip points sit below their upper-lip partners (181 84, 314 405);
  the inner-lip points 61/63/65/67 sit level with the outer peaks (82/312, 87/317), inner corners
  78/308, midline 13/14. The draft spaced lip points evenly by vertex count, which puts them too
  near the corners, because FaceMesh crowds vertices there (0.060 -> 0.054).

All 68: 0.089 -> 0.063 with BlazeFace's boxes, 0.062 with YuNet's, 0.062 from dlib's own boxes
without eye points. One FaceMesh pass (MediaPipe's rule) instead of two: 0.069 for each detector.
"""
from __future__ import annotations

import numpy as np

Vertices = tuple[int, ...]

JAW: tuple[Vertices, ...] = tuple((v,) for v in (
    127, 234, 132, 58, 172, 136, 149, 148, 152, 377, 378, 365, 397, 288, 361, 454, 356))
_BROW_UPPER = (70, 63, 105, 66, 107, 336, 296, 334, 293, 300)
_BROW_LOWER = (46, 53, 52, 65, 55, 285, 295, 282, 283, 276)
BROWS: tuple[Vertices, ...] = tuple(zip(_BROW_UPPER, _BROW_LOWER))
NOSE: tuple[Vertices, ...] = tuple((v,) for v in (168, 197, 5, 4, 240, 97, 2, 326, 460))
EYES: tuple[Vertices, ...] = tuple((v,) for v in (
    33, 160, 158, 133, 153, 144, 362, 385, 387, 263, 373, 380))
MOUTH: tuple[Vertices, ...] = tuple((v,) for v in (
    61, 39, 37, 0, 267, 269, 291, 405, 314, 17, 84, 181,  # outer lip, clockwise from 48
    78, 82, 13, 312, 308, 317, 14, 87))  # inner lip, clockwise from 60

IBUG68_FROM_FACEMESH: tuple[Vertices, ...] = JAW + BROWS + NOSE + EYES + MOUTH
GROUPS: dict[str, range] = {
    "jaw": range(0, 17), "brows": range(17, 27), "nose": range(27, 36),
    "eyes": range(36, 48), "mouth": range(48, 68),
}

# Every entry has one or two vertices: average a first and a second index (equal for singles).
_FIRST = np.array([v[0] for v in IBUG68_FROM_FACEMESH])
_SECOND = np.array([v[-1] for v in IBUG68_FROM_FACEMESH])


def to_ibug68(mesh: np.ndarray) -> np.ndarray:
    """(468, 2+) FaceMesh vertices to (68, 2) iBUG-300W points."""
    points = np.asarray(mesh)[:, :2]
    return (points[_FIRST] + points[_SECOND]) / 2
