"""``runner=ray``: a run's shards spread over a Ray cluster. Ray places the workers and packs
them onto GPUs by the memory their plugins report; facekit cuts sources into shards
(``facekit.media.shards``), runs each through the same stages as a run on this machine on a Ray
actor, hands a lost node's shards to another actor (the driver's docstring says why not Ray's
own retries), and folds each source's shard journals into its alignments file."""
