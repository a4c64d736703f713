"""The per-source ledger: what a run keeps for each source it writes, whichever executor ran it.

A source's folder, its lock, its alignments journal and face files (``SourceLedger``), its
``run_summary.json`` (``SourceSummary``, one schema), its state (``SourceState``) and its
rejects (``RejectCounts``), and a collection's ``collection.json`` (``CollectionState``). The
single-input run, a collection's stream and the Ray driver all keep their books through these.
"""
