"""Errors a user can act on: the CLI prints them as one line, never a traceback."""


class FacekitError(Exception):
    """A problem with the user's input, configuration or environment."""


class ConfigError(FacekitError):
    """A configuration value is wrong; the message lists the valid choices."""


class ModelError(FacekitError):
    """Weights are missing, corrupt or could not be downloaded."""


class StageError(FacekitError):
    """A plugin failed inside the pipeline; the message names the plugin and the frame."""


class OutputError(FacekitError):
    """The output folder stopped taking files mid-run (a full disk, say); finished frames are kept."""
