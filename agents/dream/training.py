"""PPO trained inside the dream (or, as its baseline, in the real game): resumable, with the
real game's score logged while it trains.

Both kinds of run go through :func:`train_agent` with the same :class:`~agents.ppo.PPOConfig`,
so a dream-trained agent and its real-trained baseline differ only in the env they step. A run
folder holds

- ``train_state.pt``: policy, optimizer, reward-normaliser statistics and the step count, saved
  with ``torch.save`` and read with ``weights_only=True`` (SB3's own ``.zip`` holds pickles),
  after every PPO update, so a kill loses at most one rollout;
- ``agent.pt``: the final policy, in :func:`agents.ppo.save_agent`'s format;
- ``evals.jsonl``: the real-game score every ``eval_every`` agent steps.

TensorBoard curves go to ``tb/`` beside the run folders: ``rollout/ep_rew_mean`` and
``rollout/ep_len_mean`` are the training env's episodes (dreamed ones for a dream run) and
``real/return_mean``, ``real/steps_mean`` the real game's.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv, VecMonitor

from agents.action_repeat import hold
from agents.doom_env import make_env
from agents.dream.vec import SB3DreamVecEnv
from agents.policies import AgentPolicy
from agents.ppo import PPOConfig, ProgressLines, build_ppo, make_policy, save_agent
from agents.scoring import episode_cap, score_real
from worldmodel.cli.args import UserError
from worldmodel.cli.progress import to_terminal
from worldmodel.dream.env import VecDreamEnv
from worldmodel.sampling.settings import SamplingConfig
from worldmodel.world_model import WorldModel

STATE_FORMAT_VERSION = 1


@dataclass(frozen=True)
class DreamConfig:
    """How hard the dream is (World Models: an agent exploits a dream that is too easy)."""

    temperature: float = 1.0  # of the frame codes: < 1 steadier, easier dreams; > 1 wilder
    state_temperature: float | None = None  # of the game-variable tokens (None: as the codes)
    max_steps: int | None = None  # cut each dream after this many steps (None: the timeout)
    # > 1: the dreamed HEALTH changes more often, where the model expects changes (see
    # SamplingConfig): more hits and deaths, but also more pickups (health_gathering's medkits)
    state_change_odds: float = 1.0
    # > 0: each point of dreamed HEALTH lost costs this much reward in training (hits teach
    # before they kill; the real game's reward has no such term)
    damage_penalty: float = 0.0
    # passes per dreamed frame (None: the world model's own, as play dreams it)
    passes: int | None = None

    def sampling(self, model: WorldModel | None = None) -> SamplingConfig:
        """How the dream is drawn: this config's settings, and ``model``'s own number of passes
        unless :attr:`passes` says otherwise."""
        passes = self.passes
        if passes is None and model is not None:
            passes = model.sampling.passes or model.default_passes
        return SamplingConfig(
            temperature=self.temperature,
            state_temperature=self.state_temperature,
            state_change_odds=self.state_change_odds,
            passes=passes,
        )


@dataclass(frozen=True)
class EvalConfig:
    every: int = 10_000  # agent steps between real-game scorings while training (0: never)
    episodes: int = 4  # real episodes per scoring


def check_dreamable(model: WorldModel) -> None:
    """Refuse a world model whose dream gives an agent nothing to learn from."""
    if not model.game.size:
        raise UserError(
            f"this {model.env} world model carries no game state, so its dream has no reward "
            "or end by the game's rules: train the frame prior with game state (no --no-state)"
        )
    if model.game.health_index is None:
        raise UserError(
            f"the {model.env} dream cannot end: its game state ({', '.join(model.game.names)}) "
            "has no HEALTH, so no death can be dreamed; train agents on a scenario with HEALTH"
        )


def dream_venv_factory(
    model: WorldModel, n_envs: int, data: Path | None, dream: DreamConfig
) -> Callable[[], VecEnv]:
    """Makes ``n_envs`` batched dreams of ``model`` for SB3 (starts from ``data``, or from
    the start windows shipped in the model when ``data`` is None)."""
    check_dreamable(model)

    def make() -> VecEnv:
        try:
            venv = VecDreamEnv(
                model,
                n_envs,
                data,
                model.env,
                max_steps=dream.max_steps,
                sampling=dream.sampling(model),
            )
        except ValueError as e:  # no starts to dream from, a bad max_steps, ...
            raise UserError(str(e)) from None
        return SB3DreamVecEnv(venv, dream.damage_penalty)  # check_dreamable: HEALTH is there

    return make


def real_venv_factory(env_name: str, n_envs: int) -> Callable[[], VecEnv]:
    """Makes ``n_envs`` real games, cut at :func:`episode_cap` like the dream's own episodes."""
    cap = episode_cap(env_name)

    def one() -> gym.Env:
        env = make_env(env_name)
        return gym.wrappers.TimeLimit(env, cap) if cap is not None else env

    return lambda: DummyVecEnv([one] * n_envs)


def save_state(path: Path, model: PPO, env_name: str, meta: dict[str, Any]) -> None:
    """Atomically write everything a resumed run needs (tensors and plain values only)."""
    rms = model.get_env().ret_rms  # the VecNormalize around the training env
    blob = {
        "format_version": STATE_FORMAT_VERSION,
        "env": env_name,
        "num_timesteps": int(model.num_timesteps),
        "n_updates": int(model._n_updates),
        "policy": {k: v.detach().cpu() for k, v in model.policy.state_dict().items()},
        "optimizer": model.policy.optimizer.state_dict(),
        "ret_rms": {"mean": float(rms.mean), "var": float(rms.var), "count": float(rms.count)},
        "meta": meta,
    }
    tmp = path.with_name(path.name + ".tmp")
    torch.save(blob, tmp)
    os.replace(tmp, path)


def load_state(path: Path, env_name: str, trained_in: str) -> dict[str, Any]:
    """A run's ``train_state.pt``, refusing a damaged one or one of another env or kind."""
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
        version, env, kind = blob["format_version"], blob["env"], blob["meta"]["trained_in"]
    except Exception as e:  # torch raises many types for a damaged file
        raise UserError(f"{path} is not a readable training state ({type(e).__name__})") from None
    if version != STATE_FORMAT_VERSION:
        raise UserError(f"{path} has state format {version}, expected {STATE_FORMAT_VERSION}")
    if env != env_name or kind != trained_in:
        raise UserError(
            f"{path} is an agent trained in the {kind} of {env!r}, not in the {trained_in} of "
            f"{env_name!r}: use another --out"
        )
    return blob


class _Checkpoints(BaseCallback):
    """After every PPO update (at the next rollout's start): score in the real game when the
    step count has passed a multiple of ``every``, then save the training state."""

    def __init__(
        self, run: AgentRun, evals: EvalConfig, saved: int, seconds: float, repeat: int = 1
    ) -> None:
        super().__init__()
        self.run, self.evals, self.saved, self.repeat = run, evals, saved, repeat
        self.seconds, self.t0 = seconds, time.perf_counter()

    def _on_step(self) -> bool:
        return True

    def _on_rollout_start(self) -> None:
        self.checkpoint()

    def checkpoint(self) -> None:
        steps = self.num_timesteps  # PPO's decisions
        if steps == self.saved:
            return
        every = self.evals.every  # in env steps
        if every and steps * self.repeat // every > self.saved * self.repeat // every:
            self.score(steps * self.repeat)
        self.run.meta["train_seconds"] = self.seconds + time.perf_counter() - self.t0
        save_state(self.run.state_path, self.model, self.run.env, self.run.meta)
        self.saved = steps

    def score(self, steps: int) -> None:
        # A CPU copy: AgentPolicy feeds CPU tensors, and the training policy may be on a GPU.
        live = self.model.policy
        policy = make_policy(live.observation_space, live.action_space)
        policy.load_state_dict({k: v.cpu() for k, v in live.state_dict().items()})
        player = hold(AgentPolicy(policy, seed=0), self.repeat)
        scores = score_real(player, self.run.env, self.evals.episodes)
        point = {
            "steps": steps,
            "return_mean": float(scores.returns.mean()),
            "return_std": float(scores.returns.std()),
            "steps_mean": float(scores.steps.mean()),
        }
        self.logger.record("real/return_mean", point["return_mean"])
        self.logger.record("real/steps_mean", point["steps_mean"])
        self.logger.dump(steps)
        with open(self.run.dir / "evals.jsonl", "a") as f:
            f.write(json.dumps(point) + "\n")


@dataclass
class AgentRun:
    """One training run's folder: ``env``'s agent trained in the ``meta["trained_in"]``."""

    dir: Path
    env: str
    meta: dict[str, Any]

    @property
    def state_path(self) -> Path:
        return self.dir / "train_state.pt"

    @property
    def agent_path(self) -> Path:
        return self.dir / "agent.pt"

    def evals(self) -> list[dict[str, float]]:
        path = self.dir / "evals.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line]


def train_agent(
    run: AgentRun,
    make_venv: Callable[[], VecEnv],
    config: PPOConfig,
    evals: EvalConfig | None = None,
    resume: bool = False,
    progress: bool = True,
    label: str = "train PPO",
) -> int:
    """Train (or continue) PPO in the envs of ``make_venv`` until ``config.steps`` env steps;
    writes ``run.agent_path`` and returns the env steps trained in all (PPO's own count, in
    the saved state, is of decisions: ``config.action_repeat`` env steps each). ``label``
    names the run in progress lines."""
    state = None
    if run.state_path.exists():
        if not resume:
            raise UserError(
                f"{run.dir} holds a training run: pass --resume to continue it, or another --out"
            )
        state = load_state(run.state_path, run.env, run.meta["trained_in"])
    done, total = state["num_timesteps"] if state else 0, config.decisions(config.steps)
    repeat = config.action_repeat
    if done >= total and run.agent_path.exists():
        return done * repeat
    run.dir.mkdir(parents=True, exist_ok=True)
    run.meta = {**run.meta, "ppo": asdict(config)}
    # A resumed run draws new starts and actions rather than replaying the first ones.
    model = build_ppo(VecMonitor(make_venv()), config, run.dir.parent / "tb", config.seed + done)
    if state is not None:
        model.policy.load_state_dict(state["policy"])
        model.policy.optimizer.load_state_dict(state["optimizer"])
        model.num_timesteps, model._n_updates = done, state["n_updates"]
        rms, saved = model.get_env().ret_rms, state["ret_rms"]
        rms.mean, rms.var, rms.count = (np.float64(saved[k]) for k in ("mean", "var", "count"))
    seconds = state["meta"].get("train_seconds", 0.0) if state else 0.0
    callback = _Checkpoints(run, evals or EvalConfig(), done, seconds, repeat)
    callbacks: list[BaseCallback] = [callback]
    if progress and not to_terminal():  # rich's bar shows nothing in a log file
        callbacks.append(ProgressLines(total - done, config.progress_unit, label))
    try:
        model.learn(
            total_timesteps=total - done,
            callback=callbacks,
            tb_log_name=run.dir.name,
            reset_num_timesteps=state is None,
            progress_bar=progress and to_terminal(),
        )
        callback.checkpoint()
    finally:
        model.get_env().close()
    meta = {**run.meta, "train_steps": int(model.num_timesteps) * repeat}
    save_agent(run.agent_path, run.env, model.policy, meta)
    return int(model.num_timesteps) * repeat
