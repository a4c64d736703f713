"""Curation of an extraction output folder: group faces by identity, drop near-duplicates, keep
the best N per identity, sort; the result is a new folder of links and a ``curation.json``.

Reading (``inventory``) -> embeddings -> clusters -> dedupe -> best -> result, stated once in
``decide`` and ``result``; nothing here ever writes into the folder it reads.
"""
from facekit.curate.decide import CurateSettings, Curation, decide
from facekit.curate.inventory import FaceEntry, read_output
from facekit.curate.result import CLUSTERS_FILE, CURATION_FILE, check_target, write_result

__all__ = ["CLUSTERS_FILE", "CURATION_FILE", "CurateSettings", "Curation", "FaceEntry", "check_target", "decide",
           "read_output", "write_result"]
