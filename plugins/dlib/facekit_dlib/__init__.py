"""facekit-dlib: dlib's face models as facekit plugins.

facekit finds this package through the ``dlib`` entry point in its ``facekit`` group, which names
:mod:`facekit_dlib.plugins`; that module declares the plugins and models. The model classes live
in their own modules and import dlib only when a plugin is built, so listing plugins stays cheap.
"""

__version__ = "0.1.0"
