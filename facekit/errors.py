"""Errors a user can act on (the CLI prints them as one line, never a traceback), and the two
other ways the command ends: interrupted, and with its reader gone."""

import os
import sys

#: The exit code of a command ended by Ctrl-C: the shell's for SIGINT (128 + 2). SIGTERM ends it
#: with 143 (128 + 15), so a supervisor can tell which it sent (``interrupted_exit``).
INTERRUPTED_EXIT = 130


def interrupted_exit(signum: int | None) -> int:
    """The exit code for a run stopped by signal ``signum`` (None: Ctrl-C), as a shell reports a
    command that signal ended: 128 + the signal's number."""
    return INTERRUPTED_EXIT if signum is None else 128 + signum


def stop_writing_to_a_closed_pipe() -> None:
    """Quietly, as a shell tool does: stdout goes nowhere, so Python's flush at exit cannot
    raise the same error again (its documented idiom)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    sys.exit(1)


class FacekitError(Exception):
    """A problem with the user's input, configuration or environment."""


class ConfigError(FacekitError):
    """A configuration value is wrong; the message lists the valid choices."""


class ModelError(FacekitError):
    """Weights are missing, corrupt or could not be downloaded."""


class StageError(FacekitError):
    """A plugin failed inside the pipeline; the message names the plugin and the frame.
    ``plugin`` (``identity 'sface'``) and ``cause`` (the plugin's own error) let a caller that
    knows more about the frame (a reference photo) say so in its own words."""

    def __init__(self, message: str, plugin: str = "", cause: str = "") -> None:
        super().__init__(message)
        self.plugin, self.cause = plugin, cause


class OutputError(FacekitError):
    """The output folder stopped taking files mid-run (a full disk, say); finished frames are kept."""


def failure_reason(exc: FacekitError | OSError) -> str:
    """A source's ``failed`` reason: facekit's own line, or what the system said ("Permission
    denied"), without Python's errno prefix."""
    return str(exc) if isinstance(exc, FacekitError) else f"{exc.strerror or exc}"


def cannot_write(exc: OSError, where: object) -> str:
    """What a failed write says: the file the system names, else ``where`` (a full disk names no
    file), and the system's reason without Python's errno prefix."""
    return f"cannot write {exc.filename or where}: {failure_reason(exc)}"
