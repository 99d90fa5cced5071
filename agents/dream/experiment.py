"""Agents trained only in the dream, scored in the real game beside two baselines.

:func:`run_experiment` trains PPO in the dream at each sampling temperature, PPO in the real
game for the same number of agent steps with the same settings, and scores both and a random
policy over the same real episodes (fixed seeds): return and steps survived. For each dream
agent it then compares dream and real returns from the same real starts (the exploit check,
with a side-by-side clip), and writes ``results.json``, ``results.md`` and ``results.png``.
Each training run resumes (``resume=True``) and each finished score is kept, so rerunning the
same command after an interruption continues where it stopped.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from agents.action_repeat import Held
from agents.doom_env import FRAME_SKIP
from agents.dream.exploit import exploit_check
from agents.dream.training import (
    AgentRun,
    DreamConfig,
    EvalConfig,
    check_dreamable,
    dream_venv_factory,
    real_venv_factory,
    train_agent,
)
from agents.policies import Policy, RandomPolicy
from agents.ppo import PPOConfig, load_agent
from agents.scenarios import get_scenario
from agents.scoring import EVAL_SEED, score_real
from worldmodel.dream.env import load_world_model

SHIPPED_STARTS = "the real windows shipped in the world model"


@dataclass
class Experiment:
    env: str
    checkpoint: Path  # the world model to dream in
    data: Path | None  # dataset the dreams start from (None: the model's shipped starts)
    ppo: PPOConfig = field(default_factory=PPOConfig)
    temperatures: tuple[float, ...] = (1.0,)  # one dream-trained agent per temperature
    dream: DreamConfig = field(default_factory=DreamConfig)  # its temperature is replaced
    evals: EvalConfig = field(default_factory=EvalConfig)  # real-game scoring while training
    episodes: int = 100  # real episodes each final agent is scored over
    baseline: bool = True  # also train PPO in the real game for as many steps
    exploit_starts: int = 20  # real starts of the exploit check (0: skip it)


@dataclass
class AgentScore:
    """One agent's real-game episodes (seeds EVAL_SEED, EVAL_SEED + 1, ...)."""

    name: str
    trained_in: str  # "dream", "real game" or "nothing"
    temperature: float | None
    train_steps: int
    train_minutes: float
    returns: list[float]
    steps: list[int]

    def summary(self) -> dict[str, float]:
        r, s = np.array(self.returns), np.array(self.steps) * FRAME_SKIP
        return {
            "return_mean": float(r.mean()),
            "return_std": float(r.std()),
            "tics_mean": float(s.mean()),
            "tics_std": float(s.std()),
        }


def run_dir_name(temperature: float) -> str:
    return f"dream-t{temperature:g}"


def _score(
    path: Path, name: str, policy: Policy, exp: Experiment, meta: dict[str, Any]
) -> AgentScore:
    """Score ``policy`` over the experiment's episodes, or reuse ``path`` if it scored the
    same agent (same training steps) over the same episodes."""
    key = {"episodes": exp.episodes, "seed": EVAL_SEED, "train_steps": meta["train_steps"]}
    if path.exists():
        kept = json.loads(path.read_text())
        if all(kept.get(k) == v for k, v in key.items()):
            return AgentScore(**{f.name: kept[f.name] for f in dataclasses.fields(AgentScore)})
    scores = score_real(policy, exp.env, exp.episodes)
    result = AgentScore(
        name,
        meta["trained_in"],
        meta.get("temperature"),
        meta["train_steps"],
        meta.get("train_seconds", 0.0) / 60,
        scores.returns.tolist(),
        scores.steps.tolist(),
    )
    _write(path, json.dumps({**key, **asdict(result)}, indent=1))
    return result


def run_experiment(
    exp: Experiment, out: Path, resume: bool = False, device: str = "cpu", progress: bool = True
) -> dict[str, Any]:
    """Train, score and report (see the module docstring); returns what results.json holds."""
    model = load_world_model(exp.checkpoint, exp.env, device)
    check_dreamable(model)
    scores, exploits, curves = [], [], {}
    # the model's own passes unless the config sets them, written down as a number
    base = dataclasses.replace(exp.dream, passes=exp.dream.sampling(model).passes)
    phase = _Phases(_phase_count(exp))
    steps, episodes = f"{exp.ppo.steps:,} env steps", f"over {exp.episodes} real episodes"
    for t in exp.temperatures:
        dream = dataclasses.replace(base, temperature=t)
        run = AgentRun(
            out / run_dir_name(t),
            exp.env,
            {
                "trained_in": "dream",
                "temperature": t,
                "world_model": str(exp.checkpoint),
                "starts": str(exp.data) if exp.data else SHIPPED_STARTS,
                "dream": asdict(dream),
            },
        )
        name = f"PPO in the dream, T={t:g}"
        passes = dream.sampling(model).passes
        label = phase(f"train {name}", f" ({steps}, {passes} pass(es) per dreamed frame)")
        venv = dream_venv_factory(model, exp.ppo.n_envs, exp.data, dream)
        train_agent(run, venv, exp.ppo, exp.evals, resume, progress, label)
        agent = load_agent(run.agent_path, exp.env, seed=1)
        phase(f"score {name} {episodes}")
        scores.append(_score(run.dir / "score.json", name, agent, exp, agent.meta))
        curves[run.dir.name] = run.evals()
        if exp.exploit_starts:
            phase(f"exploit check of {name}: dream vs real from {exp.exploit_starts} real starts")
            exploits.append(_exploit(run, model, dream, exp))
    if exp.baseline:
        name = "PPO in the real game"
        label = phase(f"train {name}", f" ({steps})")
        run = AgentRun(out / "real", exp.env, {"trained_in": "real game"})
        venv = real_venv_factory(exp.env, exp.ppo.n_envs)
        train_agent(run, venv, exp.ppo, exp.evals, resume, progress, label)
        agent = load_agent(run.agent_path, exp.env, seed=1)
        phase(f"score {name} {episodes}")
        scores.append(_score(run.dir / "score.json", name, agent, exp, agent.meta))
        curves["real"] = run.evals()
    n_actions = len(get_scenario(exp.env).actions)
    meta = {"trained_in": "nothing", "train_steps": 0}
    phase(f"score a random policy {episodes}")
    scores.append(
        _score(
            out / "random" / "score.json", "random policy", RandomPolicy(n_actions, 1), exp, meta
        )
    )
    repeat = exp.ppo.action_repeat
    if repeat > 1:  # the agents hold their decisions: so does a fair random baseline
        held = Held(RandomPolicy(n_actions, 1), repeat)
        name = f"random policy, held {repeat} steps"
        phase(f"score a {name} {episodes}")
        scores.append(_score(out / f"random-held{repeat}" / "score.json", name, held, exp, meta))
    results = {
        "env": exp.env,
        "world_model": str(exp.checkpoint),
        "starts": str(exp.data) if exp.data else SHIPPED_STARTS,
        "episodes": exp.episodes,
        "seeds": [EVAL_SEED, EVAL_SEED + exp.episodes - 1],
        "ppo": asdict(exp.ppo),
        "dream": asdict(base),
        "agents": [{**asdict(s), **s.summary()} for s in scores],
        "exploit": exploits,
        "curves": curves,
    }
    write_results(out, results)
    return results


class _Phases:
    """Numbered lines naming each phase of the experiment as it starts (``[2/5] score PPO in
    the dream, T=1 over 100 real episodes``), so every progress bar under one is known; they
    print without progress bars too (a few lines over an hour)."""

    def __init__(self, total: int) -> None:
        self.total, self.done = total, 0

    def __call__(self, text: str, detail: str = "") -> str:
        """Print the next phase's line (``text``, then ``detail``); returns its label for the
        phase's progress lines."""
        self.done += 1
        label = f"[{self.done}/{self.total}] {text}"
        print(label + detail, flush=True)
        return label


def _phase_count(exp: Experiment) -> int:
    """The phases :func:`run_experiment` goes through: each agent trained and scored (and each
    dream agent's exploit check), then the random baselines."""
    dream = len(exp.temperatures) * (2 + (1 if exp.exploit_starts else 0))
    return dream + (2 if exp.baseline else 0) + 1 + (1 if exp.ppo.action_repeat > 1 else 0)


def _exploit(run: AgentRun, model: Any, dream: DreamConfig, exp: Experiment) -> dict[str, Any]:
    path, clip = run.dir / "exploit.json", run.dir / "clip.mp4"
    train_steps = load_agent(run.agent_path, exp.env).meta["train_steps"]
    if path.exists():
        kept = json.loads(path.read_text())
        if kept["starts"] == exp.exploit_starts and kept["train_steps"] == train_steps:
            return kept
    report = exploit_check(
        model, lambda: load_agent(run.agent_path, exp.env, seed=1), dream, exp.exploit_starts, clip
    )
    result = {**report.to_dict(), "train_steps": train_steps, "clip": str(clip)}
    _write(path, json.dumps(result, indent=1))
    return result


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _pm(mean: float, std: float) -> str:
    return f"{mean:.1f} ± {std:.1f}"


def results_table(results: dict[str, Any]) -> str:
    """The markdown report: scores, ratios to the baselines, and the exploit check."""
    agents = results["agents"]
    lines = [
        f"# {results['env']}: PPO trained only in the dream, scored in the real game",
        "",
        f"World model `{results['world_model']}`, dreams start from {results['starts']}. "
        f"Every agent plays the same {results['episodes']} real episodes (seeds "
        f"{results['seeds'][0]}–{results['seeds'][1]}); PPO settings are the same for all.",
        "",
        "| agent | agent steps | train minutes | real return | tics survived |",
        "|---|---|---|---|---|",
    ]
    for a in agents:
        lines.append(
            f"| {a['name']} | {a['train_steps']:,} | {a['train_minutes']:.1f} | "
            f"{_pm(a['return_mean'], a['return_std'])} | {_pm(a['tics_mean'], a['tics_std'])} |"
        )
    random, *held_random = (a for a in agents if a["trained_in"] == "nothing")
    real = next((a for a in agents if a["trained_in"] == "real game"), None)
    lines.append("")
    for a in agents:
        if a["trained_in"] != "dream":
            continue
        ratios = [f"{a['return_mean'] / random['return_mean']:.2f}× random"]
        for held in held_random:
            ratios.append(f"{a['return_mean'] / held['return_mean']:.2f}× {held['name']}")
        if real is not None:
            ratios.append(f"{a['return_mean'] / real['return_mean']:.0%} of the real-trained PPO")
        lines.append(f"- {a['name']}: return {', '.join(ratios)}.")
    if results["exploit"]:
        lines += [
            "",
            "Dream vs real return of the same agent from the same real starts (exploit check):",
            "",
            "| temperature | starts | dream return | real return | dream > real by > 20% "
            "| clip (dream left, real game right) |",
            "|---|---|---|---|---|---|",
        ]
        for e in results["exploit"]:
            lines.append(
                f"| {e['temperature']:g} | {e['starts']} | {e['dream_return_mean']:.1f} | "
                f"{e['real_return_mean']:.1f} | {e['overstated_fraction']:.0%} | "
                f"`{e['clip']}` |"
            )
    return "\n".join(lines) + "\n"


def plot_results(results: dict[str, Any], path: Path) -> None:
    """Mean ± std real return and tics survived per agent, and the real-game return while
    training against agent steps."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    agents = results["agents"]
    names = [a["name"].replace("PPO in the ", "") for a in agents]
    curves = {name: points for name, points in results["curves"].items() if points}
    # the third panel only when there are curves (none when training was shorter than the
    # interval between real-game scorings)
    fig, axes = plt.subplots(1, 3 if curves else 2, figsize=(15 if curves else 10, 4))
    for ax, key, title in (
        (axes[0], "return", "real-game return"),
        (axes[1], "tics", "tics survived"),
    ):
        ax.bar(names, [a[f"{key}_mean"] for a in agents], yerr=[a[f"{key}_std"] for a in agents])
        ax.set_title(f"{title} ({results['episodes']} episodes)")
        ax.tick_params(axis="x", rotation=20)
    if curves:
        for name, points in curves.items():
            axes[2].plot(
                [p["steps"] for p in points], [p["return_mean"] for p in points], "o-", label=name
            )
        axes[2].axhline(
            next(a for a in agents if a["trained_in"] == "nothing")["return_mean"],
            color="grey",
            ls="--",
            label="random",
        )
        axes[2].set(title="real-game return while training", xlabel="agent steps")
        axes[2].xaxis.set_major_formatter(lambda x, _: f"{x / 1000:g}k")
        axes[2].legend()
    fig.suptitle(f"{results['env']}: trained in the dream vs in the real game")
    fig.tight_layout()
    tmp = path.with_name(path.stem + ".tmp.png")
    fig.savefig(tmp, dpi=80)
    plt.close(fig)
    os.replace(tmp, path)


def write_results(out: Path, results: dict[str, Any]) -> None:
    _write(out / "results.json", json.dumps(results, indent=1))
    _write(out / "results.md", results_table(results))
    plot_results(results, out / "results.png")
