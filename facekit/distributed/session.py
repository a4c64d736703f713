"""Joining a Ray cluster, or starting a private one for the run, quietly.

A private Ray (``runner.address=null``) binds to 127.0.0.1: nothing outside this machine can
reach it, and nothing in it resolves this machine's network address. Ray's own start-up lines
and every worker's output stay out of the run's log unless ``runner.verbose`` asks for them:
the driver reports what the workers did.
"""
from __future__ import annotations

import logging
import os
from contextlib import contextmanager
from typing import Any, Iterator

from facekit.errors import ConfigError, FacekitError

log = logging.getLogger("facekit")

LOOPBACK = "127.0.0.1"


def import_ray(private: bool) -> Any:
    """The ``ray`` module, or a one-line error naming the extra that installs it. Usage stats
    are off; a private Ray is told to stay on loopback before Ray reads its environment."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if private:
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    try:
        import ray
    except ImportError:
        raise ConfigError("runner=ray needs Ray, which is not installed: pip install '.[ray]' in facekit's "
                          "repository") from None
    return ray


@contextmanager
def ray_session(address: str | None, verbose: bool = False) -> Iterator[Any]:
    """Ray, connected for the block: to ``address`` (``auto``, ``HOST:PORT``, ``ray://HOST:PORT``)
    or a private Ray on this machine, which is stopped after. A session this process had already
    opened (a test's cluster) is used as it is and left open."""
    ray = import_ray(private=address is None)
    if ray.is_initialized():
        yield ray
        return
    level = logging.INFO if verbose else logging.WARNING
    ray_log = logging.getLogger("ray")
    ray_log.setLevel(level if verbose else logging.ERROR)  # start-up notices (token auth, ...) are warnings
    quiet: dict[str, Any] = {"log_to_driver": verbose, "logging_level": level if verbose else logging.ERROR}
    try:
        if address is None:
            # "local": a new Ray even where this machine runs one already (ray start, a test's cluster)
            ray.init(address="local", _node_ip_address=LOOPBACK, include_dashboard=False, **quiet)
        else:
            ray.init(address=address, **quiet)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = "a private Ray on this machine" if address is None else f"the Ray cluster at {address}"
        raise FacekitError(f"cannot start or reach {where}: {str(exc).strip().splitlines()[0]}") from None
    ray_log.setLevel(level)
    try:
        yield ray
    finally:
        ray.shutdown()
