"""A worker process that steps a group of games, resizes frames and writes finished episodes.

ViZDoom's ``make_action`` holds the GIL, so games stepped from one process run one at a time.
Groups of games in worker processes step while the main process runs the policy for another
group, and each worker compresses and writes its own finished episodes.

Protocol (one pipe per worker): the worker first sends the observations of its games; then
for every ``("step", actions, explored)`` it steps its active games and answers with
``(obs, active, finished, restarted)``: ``finished`` lists the episodes it wrote;
``restarted`` the games whose episode ended in this step (they have already started their next
episode, or gone idle when its share of the work is done), so that the policy forgets them
before it acts on the new episode, whether or not its file is written yet.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import signal
import time
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np

from worldmodel.data import Episode, EpisodeEntry, episode_filename, write_episode


@dataclass
class _Buffer:
    """One episode in progress."""

    index: int
    seed: int
    frames: list[np.ndarray] = field(default_factory=list)
    variables: list[np.ndarray] = field(default_factory=list)
    actions: list[int] = field(default_factory=list)
    rewards: list[float] = field(default_factory=list)
    explored: int = 0
    behaviour: str = ""
    end_reason: str = ""


def _write(
    out: Path, ep: _Buffer, terminated: bool, truncated: bool, attrs: dict[str, Any], n_actions: int
) -> tuple[EpisodeEntry, list[int]]:
    t = len(ep.actions)
    actions = np.array(ep.actions, dtype=np.int64)
    counts = np.bincount(actions, minlength=n_actions)
    term, trunc = np.zeros(t, dtype=bool), np.zeros(t, dtype=bool)
    term[-1], trunc[-1] = terminated, truncated
    ret = float(np.sum(ep.rewards))
    name = episode_filename(ep.index)
    write_episode(
        out / name,
        Episode(
            frames=np.stack(ep.frames),
            actions=actions,
            rewards=np.array(ep.rewards, dtype=np.float32),
            terminated=term,
            truncated=trunc,
            variables=np.stack(ep.variables).astype(np.float32),
            attrs={
                **attrs,
                "index": ep.index,
                "seed": ep.seed,
                "return": ret,
                "ended_terminated": terminated,
                "ended_truncated": truncated,
                "end_reason": ep.end_reason,
                "behaviour": ep.behaviour,
                "action_counts": counts,
                "explored_steps": ep.explored,
            },
        ),
    )
    entry = EpisodeEntry(
        ep.index, name, ep.seed, t, ret, terminated, truncated, ep.behaviour, ep.end_reason
    )
    return entry, counts.tolist()


def worker_main(
    conn: Connection,
    env_name: str,
    out: Path,
    todo: list[int],
    n_games: int,
    base_seed: int,
    attrs: dict[str, Any],
) -> None:
    from agents.doom_env import make_env  # imported here: this runs in a fresh process

    # Ctrl-C reaches every process of the terminal: the main process alone handles it, and
    # closes the workers in turn. SIGTERM (a scheduler stopping the group) closes the games.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _exit)
    envs: list[Any] = []
    try:
        for _ in range(n_games):
            envs.append(make_env(env_name))
    except BaseException:  # a SIGTERM while the games start: none may outlive this process
        for env in envs:
            env.close()
        raise
    episodes: list[_Buffer | None] = [None] * n_games
    queue = list(reversed(todo))
    n_actions = envs[0].action_space.n
    obs = np.zeros((n_games, *envs[0].observation_space.shape), dtype=np.uint8)

    def start(i: int) -> None:
        if not queue:
            episodes[i] = None
            return
        index = queue.pop()
        obs[i], info = envs[i].reset(seed=base_seed + index)
        episodes[i] = _Buffer(index, base_seed + index, [obs[i].copy()], [info["game_variables"]])

    # Finished episodes are compressed and written by a thread: zlib releases the GIL, so
    # that work overlaps with the waits on the games.
    writer = ThreadPoolExecutor(max_workers=1)
    pending: list[tuple[int, Future]] = []
    try:
        for i in range(n_games):
            start(i)
        conn.send((obs, np.array([e is not None for e in episodes]), [], []))
        while True:
            message = conn.recv()
            if message[0] == "close":
                break
            _, actions, explored, behaviours = message
            restarted = []
            for i, env in enumerate(envs):
                ep = episodes[i]
                if ep is None:
                    continue
                a = int(actions[i])
                obs[i], reward, term, trunc, info = env.step(a)
                ep.frames.append(obs[i].copy())
                ep.variables.append(info["game_variables"])
                ep.actions.append(a)
                ep.rewards.append(reward)
                ep.explored += int(explored[i])
                if not ep.behaviour:  # the policy that starts an episode plays all of it
                    ep.behaviour = str(behaviours[i])
                if term or trunc:
                    ep.end_reason = info.get("end_reason", "")
                    job = writer.submit(_write, out, ep, term, trunc, attrs, n_actions)
                    pending.append((i, job))
                    restarted.append(i)
                    start(i)
            playing = any(e is not None for e in episodes)
            if not playing:
                wait([job for _, job in pending])
            finished = [(i, *job.result()) for i, job in pending if job.done()]
            pending = [(i, job) for i, job in pending if not job.done()]
            active = np.array([e is not None for e in episodes])
            active = active if playing else active | bool(pending)
            conn.send((obs, active, finished, restarted))
    except (EOFError, BrokenPipeError, ConnectionResetError):
        pass  # the main process is gone (even kill -9 closes its end): stop, closing the games
    finally:
        writer.shutdown(wait=True)
        for env in envs:
            env.close()
        conn.close()


def _exit(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)


@contextlib.contextmanager
def _single_threaded_children():
    """Start processes with one BLAS/OpenMP thread each, whatever the caller's environment.

    A worker's only numeric work is the 160x120 -> 64x64 resize. With the default thread pools
    three workers and the policy oversubscribe two cores, and their spin-waits cut collection
    from ~770 to ~90 frames/s when it ran from train.py --quickstart (which, unlike collect.py,
    does not cap OpenBLAS before numpy loads).
    """
    names = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
    saved = {name: os.environ.get(name) for name in names}
    os.environ.update(dict.fromkeys(names, "1"))
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


class WorkerGroup:
    """The main process's handle on one worker: its games, pipe and process."""

    def __init__(
        self,
        env_name: str,
        out: Path,
        todo: list[int],
        n_games: int,
        base_seed: int,
        attrs: dict[str, Any],
    ) -> None:
        ctx = mp.get_context("spawn")  # no inherited torch/OpenMP state in the worker
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(
            target=worker_main,
            args=(child, env_name, out, todo, n_games, base_seed, attrs),
            daemon=True,
        )
        with _single_threaded_children():
            self.process.start()
        child.close()

    def send_step(self, actions: np.ndarray, explored: np.ndarray, behaviours: list[str]) -> None:
        self.conn.send(("step", actions, explored, behaviours))

    def receive(
        self,
    ) -> tuple[np.ndarray, np.ndarray, list[tuple[int, EpisodeEntry, list[int]]], list[int]]:
        """(obs, active, finished, restarted) after a step."""
        try:
            return self.conn.recv()
        except EOFError:
            raise RuntimeError(
                f"a collection worker stopped (exit code {self.process.exitcode}); its error "
                "is printed above"
            ) from None

    def close(self, timeout: float = 10.0) -> None:
        with contextlib.suppress(BrokenPipeError, OSError):
            self.conn.send(("close",))
        deadline = time.monotonic() + timeout
        while self.process.is_alive() and time.monotonic() < deadline:
            # Throw away what it still sends, or a worker blocked on a full pipe would never
            # read the "close". Raw bytes, not messages: a Ctrl-C may have stopped our last
            # recv halfway through one, and a recv would then wait for bytes that never come.
            with contextlib.suppress(OSError):
                if self.conn.poll(0.1) and not os.read(self.conn.fileno(), 1 << 16):
                    self.process.join(timeout=0.1)  # its end is closed: it is exiting
        if self.process.is_alive():
            self.process.terminate()  # SIGTERM: it still closes its games
            self.process.join(timeout=5)
        if self.process.is_alive():
            self.process.kill()
        self.process.join()
