"""The driver: hands shards to Ray actors, reruns those a lost node held, and folds each
source's shard journals into its alignments file when its last shard ends.

Scheduling is Ray's (where each actor runs, what it may use); the driver only keeps each ready
actor busy with the next shard, so a slow shard never holds the others back.

Why the driver counts its own attempts rather than using Ray's ``max_restarts`` /
``max_task_retries``: a shard is tied to no actor. Ray's retry would run a lost actor's call
again on that same actor once Ray has restarted it, which on a dead node means waiting for a
restart that may never come, while other actors sit idle; the driver instead hands the shard to
the next free actor anywhere and asks Ray for a replacement actor. And one of the reasons a shard
runs again is not a Ray failure at all: a shard whose journal or face files the driver cannot
find after its worker reported success (a node writing to a folder of its own) runs again on
another node, which no Ray retry knows of. Ray still places every actor, packs GPUs and detects
lost nodes; ``MAX_ATTEMPTS`` only bounds how often one shard is tried. A shard whose actor
is lost (its node died, its process was killed) goes back to the front of the queue and a new
actor is asked for, unless its journal had landed before the loss took its report: then the
journal is checked as a rerun checks an earlier run's and kept, not written twice. A shard whose plugin raised is failed, with the plugin and frame named, and
the run goes on. Each source is folded when all its shards have ended, in shard order, so its
``alignments.json`` lists frames in the order a local run writes them.

Before a source is folded, each shard that finished in this run is checked against its worker's
report: its journal must be in the output folder as this machine sees it, with every frame the
worker reported and every face file it names. A worker's files may not have reached it (a node
that joined after the shared-output check and writes to a folder of its own, a journal removed
or cut short since). Such a shard runs once more, on another node where one is free; if it still
falls short it fails, its journal set aside, with what is missing named, so the run never
reports frames its alignments file lacks, and the same command runs it again.
"""
from __future__ import annotations

import logging
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from facekit.console import STDERR, quantity
from facekit.distributed.resources import WorkerResources
from facekit.distributed.shard_worker import ShardResult, ShardTask, ShardWorker
from facekit.errors import FacekitError
from facekit.ledger.rejects import RejectCounts
from facekit.ledger.shard_journal import finished, missing_from, set_aside
from facekit.ledger.shards import earlier_shards, fold_shards
from facekit.ledger.source import LedgerSettings
from facekit.log_relay import configured_levels, replay
from facekit.media.sampling import Sampling
from facekit.media.shards import Shard

log = logging.getLogger("facekit")

#: Times a shard is started before its loss (not a plugin's error) fails it.
MAX_ATTEMPTS = 3
#: How long the driver waits for a first worker before it calls the cluster too small.
START_TIMEOUT_S = 300.0
_POLL_S = 0.5
_NODES_EVERY_S = 2.0


@dataclass
class SourceJob:
    """One source's shards and where they go; ``meta`` is its alignments file's (fingerprint included)."""

    key: str
    output: Path
    meta: dict[str, Any]
    shards: list[Shard]
    books: LedgerSettings  # how its journal syncs and how a kept shard's files are checked, as a local ledger's
    frames: int = 0
    #: the frames each shard must hold, where known before it runs (a re-crop's: its extraction's)
    frames_of: Callable[[Shard], Sequence[str]] | None = None


@dataclass
class SourceOutcome:
    """What became of one source in this run."""

    job: SourceJob
    frames: int = 0
    faces: int = 0
    kept_shards: set[int] = field(default_factory=set)  # the shards an earlier run finished, or a lost worker landed
    resumed: int = 0  # their frames, counted as the fold writes them
    rejected: RejectCounts = field(default_factory=RejectCounts)
    skipped: dict[str, str] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0  # summed over its shards' workers
    nodes: Counter[str] = field(default_factory=Counter)  # shards run on each node, by Ray's node id
    ended: int = 0  # shards ended in this run, finished or failed
    finished: dict[int, ShardResult] = field(default_factory=dict)  # by shard number: finished in this run, unchecked
    rerun: set[int] = field(default_factory=set)  # shards run again because their output was not found
    # A shard's log lines wait here, by shard number, until every shard before it has ended, so
    # facekit.log lists the source's lines in frame order, as a local run's (``file_logs``).
    held_logs: dict[int, list[logging.LogRecord]] = field(default_factory=dict)
    logs_filed: set[int] = field(default_factory=set)  # the shards whose lines are filed: the first ones, in order

    @property
    def kept(self) -> int:
        return len(self.kept_shards)

    def file_logs(self, number: int, records: list[logging.LogRecord]) -> None:
        """Files shard ``number``'s lines once the shards before it are filed (a shard whose
        lines were filed already, run again, files its new ones now), then each later shard's
        that was waiting on it."""
        if number in self.logs_filed:
            replay(records)
            return
        self.held_logs.setdefault(number, []).extend(records)
        waiting = [shard.number for shard in self.job.shards[len(self.logs_filed):]]
        for next_one in waiting:
            if next_one not in self.held_logs:
                break
            replay(self.held_logs.pop(next_one))
            self.logs_filed.add(next_one)

    def file_held_logs(self) -> None:
        """Files every line still waiting, in shard order: the run is stopping, and a shard
        that ended after one still running must not lose its lines."""
        for number in sorted(self.held_logs):
            replay(self.held_logs.pop(number))
            self.logs_filed.add(number)


@dataclass
class RayPlan:
    """How the shards run: the stages' payload, each worker's resources, how many workers."""

    payload: bytes
    resources: WorkerResources
    workers: int
    sampling: Sampling
    books: LedgerSettings  # debug frames and rejected crops, as every source's ledger writes them
    progress: bool = True


@dataclass
class RayTotals:
    frames: int = 0
    faces: int = 0
    shards: int = 0  # run in this run
    kept: int = 0
    failed: int = 0
    seconds: float = 0.0
    nodes: set[str] = field(default_factory=set)

    def line(self) -> str:
        rate = self.frames / self.seconds if self.seconds else 0.0
        return (f"{self.shards} shard(s) on {len(self.nodes)} node(s): {quantity(self.frames, 'frame')}, "
                f"{quantity(self.faces, 'face')} in "
                f"{self.seconds:.1f} s ({rate:.1f} frames/s); {self.kept} kept from an earlier run, "
                f"{self.failed} failed")


def run_shards(ray: Any, plan: RayPlan, jobs: Sequence[SourceJob],
               on_source_done: Callable[[SourceOutcome], None]) -> RayTotals:
    """Runs every unfinished shard of ``jobs``; ``on_source_done`` hears of each source once its
    alignments file is folded (failed shards and all: a rerun runs them)."""
    outcomes = {job.key: SourceOutcome(job) for job in jobs}
    key_of = {(str(job.output), shard.number): job.key for job in jobs for shard in job.shards}
    todo: deque[tuple[ShardTask, int]] = deque()
    for job in jobs:
        outcome = outcomes[job.key]
        outcome.kept_shards = check_earlier(job)
        fingerprint = job.meta.get("fingerprint")
        for shard in job.shards:
            if shard.number in outcome.kept_shards:
                outcome.file_logs(shard.number, [])  # an earlier run's: its lines are in its facekit.log
            else:
                todo.append((ShardTask(shard, str(job.output), plan.sampling, fingerprint, plan.books), 1))
    totals = RayTotals(kept=sum(o.kept for o in outcomes.values()))
    for outcome in outcomes.values():  # nothing left to run: fold now (a rerun after everything finished)
        if outcome.kept == len(outcome.job.shards):
            _fold(outcome, on_source_done)
    started = time.perf_counter()  # workers' start (their models) included: what a user waits for
    if todo:
        try:
            with _Workers(ray, plan, min(plan.workers, len(todo))) as workers, _progress(plan.progress) as bars:
                for result in workers.results(todo, bars):
                    outcome = outcomes[key_of[result.task.output, result.task.shard.number]]
                    if result.landed:  # its worker's report was lost with it: kept as an earlier run's would be
                        outcome.kept_shards.add(result.task.shard.number)
                        outcome.file_logs(result.task.shard.number, [])
                        totals.kept += 1
                    else:
                        _count(outcome, result, totals)
                    if outcome.kept + outcome.ended == len(outcome.job.shards) and _all_there(outcome, totals, workers):
                        _fold(outcome, on_source_done)
        finally:
            for outcome in outcomes.values():
                outcome.file_held_logs()
        totals.seconds = time.perf_counter() - started
    return totals


def fold_finished(jobs: Sequence[SourceJob], on_source_done: Callable[[SourceOutcome], None]) -> None:
    """Folds each source whose shards an earlier run all finished, without Ray: a rerun with no
    shard to run (one stopped before its last fold leaves that to it)."""
    for job in jobs:
        outcome = SourceOutcome(job, kept_shards=check_earlier(job))
        if outcome.kept == len(job.shards):
            _fold(outcome, on_source_done)


def _count(outcome: SourceOutcome, result: ShardResult, totals: RayTotals) -> None:
    outcome.file_logs(result.task.shard.number, result.logs)  # the rejected faces' lines among them, as the run's own
    outcome.ended += 1
    outcome.frames += result.frames
    outcome.faces += result.faces
    outcome.rejected.update(result.rejected)
    if result.failure is None:
        outcome.finished[result.task.shard.number] = result
    outcome.skipped.update(result.skipped)
    outcome.seconds += result.seconds
    totals.frames += result.frames
    totals.faces += result.faces
    totals.shards += 1
    if result.node:
        totals.nodes.add(result.node)
        outcome.nodes[result.node] += 1
    if result.failure is not None:
        totals.failed += 1
        outcome.failures.append(f"{result.task.shard.label}: {result.failure}")
        log.warning("shard %s failed: %s", result.task.shard.label, result.failure)


def _uncount(outcome: SourceOutcome, result: ShardResult, totals: RayTotals) -> None:
    """Takes back the frames and faces of a finished shard whose output is not there."""
    outcome.frames -= result.frames
    outcome.faces -= result.faces
    outcome.rejected.subtract(result.rejected)
    totals.frames -= result.frames
    totals.faces -= result.faces


def _all_there(outcome: SourceOutcome, totals: RayTotals, workers: _Workers) -> bool:
    """Whether every shard of the source that finished in this run has its journal and face files
    in the output folder, as its worker reported; one that falls short has its journal set aside
    and runs once more (False: the source waits for it), then fails with what is missing named."""
    job, again = outcome.job, False
    for number, result in sorted(outcome.finished.items()):
        why = missing_from(job.output, result.task.shard, result.frame_names)
        del outcome.finished[number]
        if why is None:
            continue
        label, node = result.task.shard.label, result.node[:8]
        _uncount(outcome, result, totals)
        set_aside(job.output, result.task.shard)  # not a finished shard, even to a rerun if this driver is stopped
        if number not in outcome.rerun:
            outcome.rerun.add(number)
            outcome.ended -= 1
            log.warning("shard %s: %s in %s, though its worker on node %s reported it finished; it runs again",
                        label, why, job.output, node)
            workers.again(result.task, avoid=result.node)
            again = True
            continue
        totals.failed += 1
        failure = (f"{why} in {job.output}, though its worker on node {node} reported it finished, twice "
                   "(does every node write to this same folder?)")
        outcome.failures.append(f"{label}: {failure}")
        log.warning("shard %s failed: %s", label, failure)
    return not again


def check_earlier(job: SourceJob) -> set[int]:
    """The shards an earlier run finished (``facekit.ledger.shards.earlier_shards``); other
    settings' output is refused with one line."""
    return earlier_shards(job.output, job.meta, job.shards, job.books, job.frames_of)


def _fold(outcome: SourceOutcome, on_source_done: Callable[[SourceOutcome], None]) -> None:
    """The source's finished shards into its alignments file (``facekit.ledger.shards.fold_shards``),
    the kept ones' frames counted as resumed."""
    job = outcome.job
    outcome.resumed += fold_shards(job.output, job.meta, job.shards, job.books, outcome.kept_shards)
    on_source_done(outcome)


class _Workers:
    """The run's actors: started with the plan's resources, spread over the nodes, replaced when lost."""

    def __init__(self, ray: Any, plan: RayPlan, count: int) -> None:
        self.ray, self.plan = ray, plan
        self.remote = ray.remote(ShardWorker).options(
            **plan.resources.as_options(), max_restarts=0, scheduling_strategy="SPREAD")
        self.starting: dict[Any, Any] = {}  # the actor's ready reference -> actor
        self.idle: list[tuple[Any, str]] = []  # (actor, node)
        self.busy: dict[Any, tuple[Any, str, ShardTask, int]] = {}  # result reference -> (actor, node, task, attempt)
        self.ever_ready = False
        self.replacements = count * MAX_ATTEMPTS
        self.alive_nodes, self._nodes_at = 0, float("-inf")
        self.todo: deque[tuple[ShardTask, int]] = deque()
        self.avoid: dict[tuple[str, int], str] = {}  # a shard run again -> the node it is better not run on
        self._bar: tuple[Progress, Any, int] | None = None  # the display, its shards bar, that bar's total
        for _ in range(count):
            self._start()

    def __enter__(self) -> _Workers:
        return self

    def __exit__(self, *exc_info: object) -> None:
        for actor in [*self.starting.values(), *(a for a, _ in self.idle), *(a for a, *_ in self.busy.values())]:
            self.ray.kill(actor, no_restart=True)

    def _start(self) -> None:
        actor = self.remote.remote(self.plan.payload, max(1, int(self.plan.resources.num_cpus)), configured_levels())
        self.starting[actor.node.remote()] = actor

    def results(self, todo: deque[tuple[ShardTask, int]], bars: Progress) -> Iterator[ShardResult]:
        """Each shard's result as it ends, until none is left to run."""
        bar = bars.add_task("shards", total=len(todo), rate="0.0", busy=0, nodes=0)
        self.todo, self._bar = todo, (bars, bar, len(todo))
        begun, frames, waiting_since = time.perf_counter(), 0, time.monotonic()
        while todo or self.busy:
            while self.idle and todo:
                task, attempt = todo.popleft()
                actor, node = self._idle_for(task)
                self.busy[actor.run.remote(task)] = (actor, node, task, attempt)
            if not (self.busy or self.starting):
                raise FacekitError("every Ray worker was lost and none can start again; the shards "
                                   "finished so far are kept, so the same command resumes")
            if self.busy or self.idle:
                waiting_since = time.monotonic()
            elif time.monotonic() - waiting_since > START_TIMEOUT_S:
                raise FacekitError(f"no Ray worker started in {START_TIMEOUT_S:g} s: no node has what each asks "
                                   f"for ({self.plan.resources.why})")
            ready, _ = self.ray.wait([*self.busy, *self.starting], num_returns=1, timeout=_POLL_S)
            for ref in ready:
                if ref in self.starting:
                    self._started(ref)
                    continue
                result = self._ended(ref, todo)
                if result is not None:
                    frames += result.frames
                    bars.advance(bar)
                    yield result
            elapsed = time.perf_counter() - begun
            bars.update(bar, rate=f"{frames / elapsed:.1f}" if elapsed else "0.0",
                        busy=len({node for _, node, *_ in self.busy.values()}), nodes=self._alive_nodes())

    def again(self, task: ShardTask, avoid: str) -> None:
        """Runs a shard that ended once more (its output was not found), on a node other than
        ``avoid`` if an actor there is free when its turn comes."""
        self.avoid[task.output, task.shard.number] = avoid
        self.todo.append((task, 1))
        if self._bar is not None:
            bars, bar, total = self._bar
            self._bar = bars, bar, total + 1
            bars.update(bar, total=total + 1)

    def _idle_for(self, task: ShardTask) -> tuple[Any, str]:
        """A free actor for ``task``: the last one freed, unless the task is better run elsewhere."""
        avoid = self.avoid.pop((task.output, task.shard.number), None)
        for index in range(len(self.idle) - 1, -1, -1):
            if self.idle[index][1] != avoid:
                return self.idle.pop(index)
        return self.idle.pop()

    def _started(self, ref: Any) -> None:
        actor = self.starting.pop(ref)
        try:
            node = self.ray.get(ref)
        except self.ray.exceptions.RayError as exc:
            if not self.ever_ready and not self.starting:
                raise FacekitError(f"a Ray worker could not build its plugins: {_last_line(exc)}") from None
            log.warning("a Ray worker did not start (%s); asking for another", _last_line(exc))
            self._replace()
            return
        self.ever_ready = True
        self.idle.append((actor, node))

    def _ended(self, ref: Any, todo: deque[tuple[ShardTask, int]]) -> ShardResult | None:
        """The shard's result; None when its actor was lost and the shard went back in the queue.
        A lost actor's shard whose journal landed before it was lost is not run again: the journal
        is checked as a rerun checks an earlier run's, and kept (``ShardResult.landed``)."""
        actor, node, task, attempt = self.busy.pop(ref)
        try:
            result = self.ray.get(ref)
        except self.ray.exceptions.RayTaskError as exc:  # raised by facekit's code itself, not a plugin
            self.idle.append((actor, node))
            return ShardResult(task, failure=_last_line(exc), node=node)
        except self.ray.exceptions.RayError as exc:  # the actor, its process or its node is gone
            self._replace()
            if finished(Path(task.output), task.shard, task.fingerprint, task.books.verify,
                        mask_files=task.books.mask_files):
                log.warning("shard %s: its worker on node %s was lost (%s) after its journal landed; the shard "
                            "is kept as written, its frames counted as already done", task.shard.label, node[:8],
                            _last_line(exc))
                return ShardResult(task, node=node, landed=True)
            if attempt >= MAX_ATTEMPTS:
                return ShardResult(task, failure=f"its worker was lost {attempt} times ({_last_line(exc)})", node=node)
            log.warning("shard %s: its worker on node %s was lost (%s); it runs again", task.shard.label,
                        node[:8], _last_line(exc))
            todo.appendleft((task, attempt + 1))
            return None
        self.idle.append((actor, node))
        return result

    def _replace(self) -> None:
        if self.replacements > 0:
            self.replacements -= 1
            self._start()

    def _alive_nodes(self) -> int:
        if time.monotonic() - self._nodes_at > _NODES_EVERY_S:
            self._nodes_at = time.monotonic()
            self.alive_nodes = sum(1 for node in self.ray.nodes() if node.get("Alive"))
        return self.alive_nodes


def _last_line(exc: BaseException) -> str:
    """The useful line of a Ray error: the cause's own message, not the traceback around it."""
    cause = getattr(exc, "cause", None)
    if isinstance(cause, BaseException) and str(cause):
        return str(cause).strip().splitlines()[-1]
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    return lines[-1] if lines else type(exc).__name__


def _progress(enabled: bool) -> Progress:
    """One display for the whole cluster: shards ended of those to run, frames a second, nodes busy."""
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("{task.fields[rate]} frames/s, {task.fields[busy]} of {task.fields[nodes]} node(s) busy"),
                    TimeRemainingColumn(), console=STDERR, disable=not enabled)
