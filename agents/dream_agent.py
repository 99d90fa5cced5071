"""Agents trained inside the dream, scored in the real game next to two baselines.

``train_in_dream`` runs PPO on ``VecDreamEnv`` only (it never sees a real frame after the
start frames). ``compare`` plays it, a PPO agent trained in the real game for the same number
of steps, and a random policy in real ViZDoom, and reports mean ± std return.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from agents.dream_vec import SB3DreamVecEnv
from agents.policies import RandomPolicy
from agents.ppo import PPOConfig, evaluate_returns, load_agent, train_ppo
from agents.scenarios import get_scenario
from worldmodel.dream_env import VecDreamEnv


@dataclass
class AgentResult:
    name: str
    mean: float
    std: float
    episodes: int
    train_steps: int
    train_seconds: float

    def row(self) -> str:
        return (
            f"| {self.name} | {self.mean:.1f} ± {self.std:.1f} | {self.episodes} | "
            f"{self.train_steps} | {self.train_seconds / 60:.1f} |"
        )


def train_in_dream(
    checkpoint: Path,
    data: Path,
    env: str,
    out: Path,
    config: PPOConfig,
    device: str = "cpu",
    progress: bool = True,
) -> float:
    """PPO in ``config.n_envs`` batched dreams for ``config.steps`` steps; returns seconds."""
    t0 = time.perf_counter()
    venv = VecDreamEnv(checkpoint, num_envs=config.n_envs, data=data, env=env, device=device)
    train_ppo(
        env,
        out,
        config,
        tensorboard_dir=out.parent / "tb",
        progress_bar=progress,
        make_vec_env=lambda: SB3DreamVecEnv(venv),
    )
    return time.perf_counter() - t0


def train_in_real(env: str, out: Path, config: PPOConfig, progress: bool = True) -> float:
    t0 = time.perf_counter()
    train_ppo(env, out, config, tensorboard_dir=out.parent / "tb", progress_bar=progress)
    return time.perf_counter() - t0


def score(name: str, policy, env: str, episodes: int, steps: int, seconds: float) -> AgentResult:
    returns = evaluate_returns(policy, env, episodes)
    return AgentResult(
        name, float(np.mean(returns)), float(np.std(returns)), len(returns), steps, seconds
    )


def compare(
    checkpoint: Path,
    data: Path,
    env: str,
    out_dir: Path,
    config: PPOConfig,
    episodes: int = 50,
    baseline: bool = True,
    device: str = "cpu",
    progress: bool = True,
) -> list[AgentResult]:
    """Train in the dream (and in the real game, same steps), score all in the real game, and
    write ``out_dir/agents.json`` and ``agents.md``."""
    dream_path = out_dir / "dream" / "ppo.pt"
    dream_s = train_in_dream(checkpoint, data, env, dream_path, config, device, progress)
    results = [
        score(
            "PPO trained in the dream",
            load_agent(dream_path, env, seed=1),
            env,
            episodes,
            config.steps,
            dream_s,
        )
    ]
    if baseline:
        real_path = out_dir / "real" / "ppo.pt"
        real_s = train_in_real(env, real_path, config, progress)
        results.append(
            score(
                "PPO trained in the real game",
                load_agent(real_path, env, seed=1),
                env,
                episodes,
                config.steps,
                real_s,
            )
        )
    n_actions = len(get_scenario(env).actions)
    results.append(score("random policy", RandomPolicy(n_actions, seed=1), env, episodes, 0, 0.0))
    _write(out_dir, checkpoint, env, config, results)
    return results


def _write(
    out_dir: Path, checkpoint: Path, env: str, config: PPOConfig, results: list[AgentResult]
) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    blob = {
        "env": env,
        "checkpoint": str(checkpoint),
        "ppo": asdict(config),
        "results": [asdict(r) for r in results],
    }
    table = [
        "| agent | real-game return (mean ± std) | episodes | train steps | train minutes |",
        "|---|---|---|---|---|",
        *[r.row() for r in results],
    ]
    dream, real = results[0], next((r for r in results if "real game" in r.name), None)
    if real is not None:
        table.append(f"\nDream-trained / real-trained: {dream.mean / real.mean:.0%}")
    for name, text in (
        ("agents.json", json.dumps(blob, indent=1)),
        ("agents.md", "\n".join(table) + "\n"),
    ):
        tmp = out_dir / (name + ".tmp")
        tmp.write_text(text)
        os.replace(tmp, out_dir / name)
