"""Train a stable-baselines3 PPO agent per scenario and store it without pickle.

SB3's own ``.zip`` embeds cloudpickled objects, so loading one can execute code. We save the
policy's ``state_dict`` plus plain metadata with ``torch.save`` and load it with
``torch.load(weights_only=True)``, rebuilding the policy from the env's spaces.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.policies import (
    ActorCriticCnnPolicy,
    ActorCriticPolicy,
    MultiInputActorCriticPolicy,
)
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv, VecNormalize

from agents.action_repeat import Held, VecActionRepeat, hold
from agents.doom_env import make_env
from agents.policies import AgentPolicy
from agents.prev_action import VecPrevAction, prev_action_space
from agents.scenarios import get_scenario
from worldmodel.cli.progress import LineProgress, to_terminal

AGENT_FORMAT_VERSION = 1
DEFAULT_AGENTS_DIR = Path("runs/agents")


class AgentError(ValueError):
    """A missing, damaged, or mismatched agent file."""


@dataclass
class PPOConfig:
    """PPO hyperparameters (SB3 names); defaults tuned for 64×64 ViZDoom on a CPU."""

    steps: int = 100_000  # total env steps of training
    n_envs: int = 8  # parallel envs (ViZDoom games run as their own processes)
    n_steps: int = 128  # rollout length per env between updates
    batch_size: int = 256
    n_epochs: int = 4
    learning_rate: float = 2.5e-4
    gamma: float = 0.99
    gae_lambda: float = 0.95
    clip_range: float = 0.1
    ent_coef: float = 0.01
    seed: int = 0
    prev_action: bool = False  # show the policy its last action (agents.prev_action)
    action_repeat: int = 1  # hold each decision for this many env steps (agents.action_repeat)

    @property
    def progress_unit(self) -> str:
        """What PPO counts: env steps, or decisions of ``action_repeat`` steps each."""
        return f"decisions of {self.action_repeat} steps" if self.action_repeat > 1 else "env steps"

    def decisions(self, env_steps: int) -> int:
        """PPO's step count (decisions) for ``env_steps`` steps of the env."""
        return -(-env_steps // self.action_repeat)


SHIPPED_AGENTS = Path(__file__).resolve().parent / "assets"


def default_agent_path(env_name: str, agents_dir: Path | str = DEFAULT_AGENTS_DIR) -> Path:
    return Path(agents_dir) / env_name / "ppo.pt"


def find_agent(env_name: str, agents_dir: Path | str = DEFAULT_AGENTS_DIR) -> Path | None:
    """The env's trained agent: one trained here first, else the shipped one trained in the real
    game, else the shipped one trained in the dream, else None."""
    candidates = (
        default_agent_path(env_name, agents_dir),
        SHIPPED_AGENTS / f"{env_name}_ppo.pt",
        SHIPPED_AGENTS / f"{env_name}_dream_ppo.pt",
    )
    for path in candidates:
        if path.is_file():
            return path
    return None


def _policy_spaces(
    env_name: str, prev_action: bool = False
) -> tuple[gym.spaces.Space, gym.spaces.Discrete]:
    actions = gym.spaces.Discrete(len(get_scenario(env_name).actions))
    obs = gym.spaces.Box(0, 255, (3, 64, 64), dtype=np.uint8)  # channel-first, as SB3 sees it
    return (prev_action_space(obs, int(actions.n)) if prev_action else obs), actions


# A policy with memory mirrors CnnPolicy: the same 512-feature NatureCNN and linear heads, so the
# last action's one-hot enters the heads beside the frame's features.
_MEMORY_POLICY_KWARGS = {"net_arch": [], "features_extractor_kwargs": {"cnn_output_dim": 512}}


def make_policy(obs_space: gym.spaces.Space, act_space: gym.spaces.Discrete) -> ActorCriticPolicy:
    """An untrained policy of the project's shape for these spaces (for loading weights into)."""
    if isinstance(obs_space, gym.spaces.Dict):
        return MultiInputActorCriticPolicy(
            obs_space, act_space, lr_schedule=lambda _: 0.0, **_MEMORY_POLICY_KWARGS
        )
    return ActorCriticCnnPolicy(obs_space, act_space, lr_schedule=lambda _: 0.0)


def save_agent(
    path: Path, env_name: str, policy: ActorCriticCnnPolicy, meta: dict[str, Any]
) -> None:
    """Atomically write the policy weights and plain metadata (no pickled objects)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    blob = {
        "format_version": AGENT_FORMAT_VERSION,
        "env": env_name,
        "action_names": list(get_scenario(env_name).action_names),
        "state_dict": {k: v.detach().cpu() for k, v in policy.state_dict().items()},
        "meta": meta,
    }
    tmp = path.with_name(path.name + ".tmp")
    try:
        torch.save(blob, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def load_agent(
    path: Path | str, env_name: str, deterministic: bool = False, seed: int | None = None
) -> AgentPolicy | Held:
    """Load an agent saved by :func:`save_agent`, refusing one trained on another env; an agent
    trained with action repeat comes back :class:`~agents.action_repeat.Held` as it trained."""
    path = Path(path)
    if not path.is_file():
        raise AgentError(
            f"no agent at {path}; train one with: python collect.py --env {env_name} --policy ppo"
        )
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
        version, trained_on = blob["format_version"], blob["env"]
    except Exception as e:  # torch raises many types for a damaged file
        # one line, without torch's advice to load with weights_only=False (it runs code)
        raise AgentError(f"{path} is not a readable agent file ({type(e).__name__})") from None
    if "kind" in blob:  # world-model checkpoints carry the same version and env keys
        raise AgentError(
            f"{path} is a {blob['kind']} checkpoint, not a PPO agent; agents are made by "
            f"python collect.py --env {env_name} --policy ppo (in {DEFAULT_AGENTS_DIR}/ENV/ppo.pt)"
        )
    if not isinstance(blob.get("state_dict"), dict):
        raise AgentError(f"{path} is damaged: it holds no policy weights ('state_dict')")
    if version != AGENT_FORMAT_VERSION:
        raise AgentError(f"{path} has agent format {version}, expected {AGENT_FORMAT_VERSION}")
    if trained_on != env_name:
        raise AgentError(f"{path} is an agent for {trained_on!r}, not {env_name!r}")
    memory = any(k.startswith("features_extractor.extractors.") for k in blob["state_dict"])
    policy = make_policy(*_policy_spaces(env_name, prev_action=memory))
    try:
        policy.load_state_dict(blob["state_dict"])
    except RuntimeError as e:
        raise AgentError(f"{path} does not fit the policy network ({e})") from None
    meta = blob.get("meta", {})
    agent = AgentPolicy(policy, deterministic=deterministic, seed=seed, meta=meta)
    return hold(agent, agent_repeat(meta))


def agent_repeat(meta: dict[str, Any]) -> int:
    """How many steps the agent of ``meta`` holds each decision (1 for agents from before
    action repeat existed; dream-experiment agents keep their PPOConfig under "ppo")."""
    return int(meta.get("ppo", meta).get("action_repeat", 1))


class ProgressLines(BaseCallback):
    """SB3's progress bar (rich) shows nothing in a log file: plain lines there instead."""

    def __init__(self, total: int, unit: str = "env steps", desc: str = "train PPO") -> None:
        super().__init__()
        self.total, self.unit, self.desc = total, unit, desc

    def _on_training_start(self) -> None:
        self.lines = LineProgress(self.total, self.desc, self.unit)

    def _on_step(self) -> bool:
        self.lines.update(self.training_env.num_envs)
        return True

    def _on_training_end(self) -> None:
        self.lines.close()


def build_ppo(venv: VecEnv, config: PPOConfig, tensorboard: Path | None, seed: int) -> PPO:
    """The project's PPO on ``venv``; rewards are normalised for training only
    (``VecNormalize``), so the saved policy acts on raw frames. With ``config.prev_action`` the
    policy also sees its last action (:class:`~agents.prev_action.VecPrevAction`); with
    ``config.action_repeat`` > 1 each of its decisions is held that many steps
    (:class:`~agents.action_repeat.VecActionRepeat`), and PPO's step counts are decisions.
    A minibatch is at most one rollout (``n_steps`` × the envs)."""
    if config.action_repeat > 1:
        venv = VecActionRepeat(venv, config.action_repeat)
    if config.prev_action:
        venv = VecPrevAction(venv)
    norm = VecNormalize(venv, norm_obs=False, norm_reward=True, gamma=config.gamma)
    return PPO(
        "MultiInputPolicy" if config.prev_action else "CnnPolicy",
        norm,
        policy_kwargs=_MEMORY_POLICY_KWARGS if config.prev_action else None,
        n_steps=config.n_steps,
        batch_size=min(config.batch_size, config.n_steps * venv.num_envs),  # not past a rollout
        n_epochs=config.n_epochs,
        learning_rate=config.learning_rate,
        gamma=config.gamma,
        gae_lambda=config.gae_lambda,
        clip_range=config.clip_range,
        ent_coef=config.ent_coef,
        seed=seed,
        tensorboard_log=str(tensorboard) if tensorboard else None,
        device="auto",
        verbose=0,
    )


def train_ppo(
    env_name: str,
    out: Path,
    config: PPOConfig,
    tensorboard_dir: Path | None = None,
    progress_bar: bool = True,
    make_vec_env=None,
    snapshots: tuple[int, ...] = (),
) -> PPO:
    """Train PPO on ``env_name`` (or on envs from ``make_vec_env``) and save it to ``out``.

    Rewards are normalised for training only (``VecNormalize``); the saved policy acts on raw
    frames. ``make_vec_env``, if given, returns the vectorised env to train in (the dream).
    ``snapshots`` are step counts at which the policy is also saved as ``out``'s name with
    ``_<steps>`` added (e.g. ``ppo_20000.pt``): agents at several stages of training play
    differently, and a world model should see all of them (GameNGen recorded its PPO's whole
    training).
    """
    torch.manual_seed(config.seed)
    if make_vec_env is None:
        venv = DummyVecEnv(
            [lambda i=i: make_env(env_name, seed=config.seed + i) for i in range(config.n_envs)]
        )
    else:
        venv = make_vec_env()
    model = build_ppo(venv, config, tensorboard_dir, config.seed)
    callbacks: list[BaseCallback] = []
    if snapshots:
        callbacks.append(_Snapshots(env_name, out, sorted(snapshots), config))
    if progress_bar and not to_terminal():
        callbacks.append(ProgressLines(config.decisions(config.steps), config.progress_unit))
    try:
        model.learn(
            total_timesteps=config.decisions(config.steps),
            progress_bar=progress_bar and to_terminal(),
            callback=callbacks or None,
            tb_log_name="ppo",
        )
    finally:  # also on Ctrl-C: the games are processes of their own, never left behind
        venv.close()
    save_agent(out, env_name, model.policy, {"train_steps": config.steps, **vars(config)})
    return model


def snapshot_path(out: Path, steps: int) -> Path:
    return out.with_name(f"{out.stem}_{steps}{out.suffix}")


class _Snapshots(BaseCallback):
    """Saves the policy each time training passes one of the ``steps`` counts."""

    def __init__(self, env_name: str, out: Path, steps: list[int], config: PPOConfig) -> None:
        super().__init__()
        self.env_name, self.out, self.todo, self.config = env_name, out, list(steps), config

    def _on_step(self) -> bool:
        while self.todo and self.num_timesteps * self.config.action_repeat >= self.todo[0]:
            steps = self.todo.pop(0)
            meta = {**vars(self.config), "train_steps": steps}
            save_agent(snapshot_path(self.out, steps), self.env_name, self.model.policy, meta)
        return True
