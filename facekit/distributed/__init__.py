"""``runner=ray``: a run's shards spread over a Ray cluster. Ray places the workers, packs them
onto GPUs by the memory their plugins report, and reruns the shards of a node that dies; facekit
cuts sources into shards (``facekit.media.shards``), runs each through the same stages as the
local runner on a Ray actor, and folds each source's shard journals into its alignments file."""
