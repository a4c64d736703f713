"""What ``task=`` selects: each task takes the composed config and the plugin registry."""
from facekit.app.tasks.curate import run_curate
from facekit.app.tasks.extract import run_extract
from facekit.app.tasks.mask import run_mask
from facekit.app.tasks.plugins import run_plugins
from facekit.app.tasks.recrop import run_recrop

TASKS = {"extract": run_extract, "plugins": run_plugins, "curate": run_curate, "mask": run_mask,
         "recrop": run_recrop}
