"""From nothing to a playable dream in one command (``python train.py --quickstart``).

Stages: train a PPO agent (if there is none) -> collect a dataset with it -> train the
tokenizer -> train the prior -> a quick evaluation -> print the play command. Every stage is
resumable: a rerun skips finished stages (recorded in OUT/quickstart.json) and continues an
interrupted one from its checkpoint.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agents.collect.run import CollectConfig, collect, make_policy
from agents.ppo import PPOConfig, default_agent_path
from worldmodel.checkpoint import load_checkpoint
from worldmodel.training.loop import Runtime
from worldmodel.training.presets import TRAIN_PRESETS
from worldmodel.training.run import train_prior, train_tokenizer


@dataclass(frozen=True)
class QuickstartPlan:
    """What the quickstart does, and the minutes each stage is planned to take on 2 cores."""

    preset: str = "cpu"
    # Sized from measured stages on 2 cores: PPO 60k steps + scoring ~4 min, collection
    # ~1,100 frames/s, tokenizer ~2.6 steps/s; the frame prior with health runs ~0.86 steps/s,
    # so the stage cap stops it near step 1,300. Timed from nothing in a fresh clone: 48 min
    # (docs/NEW_USER.md).
    agent: PPOConfig = field(default_factory=lambda: PPOConfig(steps=60_000))
    episodes: int = 200
    vqvae_steps: int = 2500
    prior_steps: int = 2000
    stage_minutes_cap: float = 25.0  # no stage runs longer, whatever the machine
    agent_report_episodes: int = 20  # score the new agent against random over this many
    eval_clips: int = 16
    eval_idm_steps: int = 200
    plan_minutes: tuple[tuple[str, float], ...] = (
        ("agent", 4.0),
        ("collect", 1.0),
        ("tokenizer", 15.5),
        ("prior", 26.0),
        ("evaluate", 2.0),
    )

    @classmethod
    def tiny(cls) -> QuickstartPlan:
        """For tests: every stage in seconds."""
        return cls(
            preset="tiny",
            agent=PPOConfig(steps=128, n_envs=2, n_steps=64, batch_size=64, n_epochs=1),
            episodes=10,
            vqvae_steps=20,
            prior_steps=20,
            agent_report_episodes=0,
            eval_clips=2,
            eval_idm_steps=10,
            plan_minutes=tuple(
                (n, 0.2) for n in ("agent", "collect", "tokenizer", "prior", "evaluate")
            ),
        )


class Progress:
    """Stage headers with an overall ETA: the planned minutes left, scaled by how the finished
    stages ran against their plan."""

    def __init__(self, plan: QuickstartPlan, state: dict[str, Any]) -> None:
        self.plan, self.state = plan, state
        self.t0 = time.perf_counter()

    def header(self, index: int, name: str) -> None:
        planned = dict(self.plan.plan_minutes)
        done = [n for n, _ in self.plan.plan_minutes if self.state.get(n)]
        spent_plan = sum(planned[n] for n in done)
        spent = sum(self.state[n]["minutes"] for n in done)
        left = sum(m for n, m in self.plan.plan_minutes if n not in done)
        scale = spent / spent_plan if spent_plan > 0 else 1.0
        print(
            f"\n[{index}/{len(planned)}] {name}: planned {planned[name]:.0f} min; "
            f"about {left * scale:.0f} min left in all",
            flush=True,
        )


def quickstart(
    env: str,
    data: Path,
    out: Path,
    runtime: Runtime,
    plan: QuickstartPlan,
    agents_dir: Path,
    i3d: Path | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    marker = out / "quickstart.json"
    state: dict[str, Any] = json.loads(marker.read_text()) if marker.exists() else {}
    bar = Progress(plan, state)

    def stage(index: int, name: str, work: Callable[[], Any]) -> None:
        if state.get(name):
            print(f"[{index}/5] {name}: done earlier, skipped")
            return
        bar.header(index, name)
        t0 = time.perf_counter()
        result = work()
        state[name] = {"minutes": (time.perf_counter() - t0) / 60, "result": result}
        out.mkdir(parents=True, exist_ok=True)
        tmp = marker.with_name(marker.name + ".tmp")
        tmp.write_text(json.dumps(state, indent=1, default=str))
        os.replace(tmp, marker)

    # The agent's play, and play like a person's and random held keys, so that the dream knows
    # what happens when a player stands still or walks into a wall.
    collect_config = CollectConfig(
        env=env, episodes=plan.episodes, policy="mix:ppo=2,human=2,sticky_random=1"
    )

    def agent() -> str:
        agent_only = dataclasses.replace(collect_config, policy="ppo")
        # from nothing: its own agent, not the shipped one
        make_policy(agent_only, agents_dir, plan.agent, progress, plan.agent_report_episodes, False)
        return str(default_agent_path(env, agents_dir))

    def gather() -> dict[str, Any]:
        policy = make_policy(collect_config, agents_dir, plan.agent, progress, 0, False)
        result = collect(data, collect_config, policy, progress)
        return {"episodes": len(result.manifest.episodes), "new_frames": result.new_frames}

    def fit(name: str, steps: int, fn, preset: str | None = None) -> Callable[[], dict[str, Any]]:
        def work() -> dict[str, Any]:
            config = dataclasses.replace(
                TRAIN_PRESETS[preset or name][plan.preset],
                steps=steps,
                minutes=plan.stage_minutes_cap,
            )
            checkpoint = out / f"{name}.pt"
            resume = checkpoint.exists()
            if resume and load_checkpoint(checkpoint, name, env)["step"] >= steps:
                return {"resumed_finished": True}
            return fn(
                env, data, out, plan.preset, config, runtime, resume=resume, progress=progress
            )

        return work

    def evaluate() -> dict[str, Any]:
        from worldmodel.evaluation.pipeline import EvalConfig
        from worldmodel.evaluation.pipeline import evaluate as run_eval
        from worldmodel.world_model import WorldModel

        model = WorldModel.load(out / "worldmodel.pt", env, runtime.device)
        eval_config = dataclasses.replace(
            EvalConfig.quick(),
            clips=plan.eval_clips,
            idm_steps=plan.eval_idm_steps,
            idm_transitions=10 * plan.eval_idm_steps,
        )
        metrics = run_eval(model, data, out / "eval-quick", i3d, eval_config, progress, run_dir=out)
        return {
            "open_loop_psnr": metrics["open_loop"]["psnr_mean"],
            "reconstruction_psnr": metrics["reconstruction"]["psnr"],
            "fvd": metrics.get("fvd", {}).get("dream_vs_real"),
        }

    stage(1, "agent", agent)
    stage(2, "collect", gather)
    stage(3, "tokenizer", fit("vqvae", plan.vqvae_steps, train_tokenizer))
    stage(4, "prior", fit("prior", plan.prior_steps, train_prior, "frame"))
    stage(5, "evaluate", evaluate)
    total = sum(state[n]["minutes"] for n, _ in plan.plan_minutes if state.get(n))
    this_run = (time.perf_counter() - bar.t0) / 60
    print(f"\nquickstart done: {total:.1f} min of stages ({this_run:.1f} min in this run)")
    print(f"play it: python play.py --env {env} --checkpoint {out / 'worldmodel.pt'}")
    print(f"report:  {out / 'eval-quick' / 'report.md'}")
    return state
