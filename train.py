"""Train the world model: python train.py --env health_gathering --stage all --preset cpu

Stages: ``vqvae`` (the tokenizer), ``prior`` (the action-conditioned GPT over its codes; needs
a trained tokenizer in --out), ``all`` (both in turn), ``agent`` (PPO trained only inside the
dream, then scored in the real game next to PPO trained in the real game for as many steps).
Checkpoints, TensorBoard logs and sample GIFs go to --out (default runs/ENV-PRESET).
Multi-GPU: torchrun --nproc_per_node N train.py ... (the same flags).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from agents.ppo import AgentError
from agents.scenarios import DEFAULT_ENV, UnknownEnvError, get_scenario
from worldmodel.checkpoint import CheckpointError
from worldmodel.cli import UserError, add_dataclass_flags, dataclass_from_args, fail
from worldmodel.config import PRESETS
from worldmodel.data import DatasetError
from worldmodel.training.loop import Runtime, TrainConfig, setup_runtime
from worldmodel.training.presets import TRAIN_PRESETS
from worldmodel.training.run import train_prior, train_tokenizer

STAGES = ("vqvae", "prior", "all", "agent")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--env", default=DEFAULT_ENV, help="scenario (default: %(default)s)")
    p.add_argument("--stage", choices=STAGES, default="all", help="what to train")
    p.add_argument("--preset", choices=PRESETS, default="cpu", help="model and training sizes")
    p.add_argument("--data", type=Path, help="dataset folder (default: data/ENV)")
    p.add_argument("--out", type=Path, help="run folder (default: runs/ENV-PRESET)")
    p.add_argument("--resume", action="store_true", help="continue the checkpoint in --out")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--threads", type=int, help="CPU threads for torch (default: all cores)")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="SEC.FIELD=V",
        help="override a model config field, e.g. --set vqvae.attention=false",
    )
    p.add_argument(
        "--prior-arch",
        choices=("frame", "raster"),
        help="frame: the frame-parallel prior with game state (default for tiny/cpu); "
        "raster: the paper's code-by-code prior (default for paper)",
    )
    p.add_argument(
        "--no-state",
        action="store_true",
        help="frame prior without game-state tokens (frames only, the dream cannot end)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    quick = p.add_argument_group("--quickstart")
    quick.add_argument(
        "--quickstart",
        action="store_true",
        help="from nothing: agent, data, tokenizer, prior, quick evaluation",
    )
    quick.add_argument("--i3d", type=Path, help="I3D weights, to report FVD in the evaluation")
    quick.add_argument(
        "--agents-dir",
        type=Path,
        default=Path("runs/agents"),
        help="where trained agents live: AGENTS_DIR/ENV/ppo.pt",
    )
    agent = p.add_argument_group("--stage agent")
    agent.add_argument("--checkpoint", type=Path, help="world model (default: OUT/worldmodel.pt)")
    agent.add_argument("--agent-steps", type=int, default=100_000, help="PPO steps per agent")
    agent.add_argument("--agent-envs", type=int, default=16, help="dreams (or games) at once")
    agent.add_argument("--episodes", type=int, default=100, help="real episodes scoring each")
    agent.add_argument(
        "--temperature",
        type=float,
        nargs="+",
        default=[1.0],
        help="dream sampling temperature; several: one dream-trained agent each",
    )
    agent.add_argument(
        "--state-temperature", type=float, help="of the dreamed health (default: --temperature)"
    )
    agent.add_argument("--dream-steps", type=int, help="cut dreams after this many steps")
    agent.add_argument(
        "--agent-eval-every", type=int, default=10_000, help="steps between real-game scorings"
    )
    agent.add_argument(
        "--exploit-starts", type=int, default=20, help="starts of the dream-vs-real check (0: off)"
    )
    agent.add_argument(
        "--no-baseline", action="store_true", help="skip the PPO agent trained in the real game"
    )
    add_dataclass_flags(p, TrainConfig)
    return p.parse_args(argv)


def train_config(args: argparse.Namespace, stage: str) -> TrainConfig:
    config = dataclass_from_args(TrainConfig, args, TRAIN_PRESETS[stage][args.preset])
    if config.steps <= 0 or config.batch_size <= 0:
        raise UserError("--steps and --batch-size must be positive")
    return config


def run_vqvae(args: argparse.Namespace, runtime: Runtime, out: Path, data: Path) -> dict:
    return train_tokenizer(
        args.env,
        data,
        out,
        args.preset,
        train_config(args, "vqvae"),
        runtime,
        args.overrides,
        args.resume,
        not args.quiet,
    )


def prior_arch(args: argparse.Namespace) -> str:
    return args.prior_arch or ("raster" if args.preset == "paper" else "frame")


def run_prior(args: argparse.Namespace, runtime: Runtime, out: Path, data: Path) -> dict:
    arch = prior_arch(args)
    return train_prior(
        args.env,
        data,
        out,
        args.preset,
        train_config(args, "frame" if arch == "frame" else "prior"),
        runtime,
        args.overrides,
        args.resume,
        not args.quiet,
        arch,
        not args.no_state,
    )


def run_agent(args: argparse.Namespace, runtime: Runtime, out: Path, data: Path) -> dict:
    from agents.dream_agent import Experiment, run_experiment
    from agents.dream_training import DreamConfig, EvalConfig
    from agents.ppo import PPOConfig

    counts = (args.agent_steps, args.agent_envs, args.episodes, *args.temperature)
    if min(counts) <= 0 or args.agent_eval_every < 0 or args.exploit_starts < 0:
        raise UserError(
            "--agent-steps, --agent-envs, --episodes and --temperature must be positive"
        )
    checkpoint = args.checkpoint or out / "worldmodel.pt"
    if not checkpoint.exists():
        raise UserError(
            f"no world model at {checkpoint}; train one first: python train.py "
            f"--env {args.env} --stage all --out {out}"
        )
    experiment = Experiment(
        args.env,
        checkpoint,
        args.data or (data if data.is_dir() else None),  # else the starts shipped in the model
        PPOConfig(steps=args.agent_steps, n_envs=args.agent_envs),
        tuple(args.temperature),
        DreamConfig(state_temperature=args.state_temperature, max_steps=args.dream_steps),
        EvalConfig(every=args.agent_eval_every),
        args.episodes,
        not args.no_baseline,
        args.exploit_starts,
    )
    results = run_experiment(
        experiment, out / "agents", args.resume, str(runtime.device), not args.quiet
    )
    print((out / "agents" / "results.md").read_text())
    return {a["name"]: a["return_mean"] for a in results["agents"]}


def run_quickstart(args: argparse.Namespace, runtime: Runtime, out: Path, data: Path) -> None:
    from agents.quickstart import QuickstartPlan, quickstart

    if args.preset == "paper":
        raise UserError("--quickstart is for CPU presets (cpu, tiny); train paper size by stage")
    if args.i3d is not None and not args.i3d.is_file():
        raise UserError(f"--i3d {args.i3d}: no such file")
    plan = QuickstartPlan.tiny() if args.preset == "tiny" else QuickstartPlan()
    quickstart(args.env, data, out, runtime, plan, args.agents_dir, args.i3d, not args.quiet)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    out = args.out or Path("runs") / f"{args.env}-{args.preset}"
    data = args.data or Path("data") / args.env
    try:
        get_scenario(args.env)
        if args.threads:
            torch.set_num_threads(args.threads)
        runtime = setup_runtime(args.device)
        results = {}
        if args.quickstart:
            run_quickstart(args, runtime, out, data)
            return
        if args.stage in ("vqvae", "all"):
            results["vqvae"] = run_vqvae(args, runtime, out, data)
        if args.stage in ("prior", "all"):
            results["prior"] = run_prior(args, runtime, out, data)
        if args.stage == "agent":
            results["agent"] = run_agent(args, runtime, out, data)
    except (UserError, DatasetError, CheckpointError, UnknownEnvError, AgentError) as e:
        fail(str(e))
    except KeyboardInterrupt:
        print(
            f"\ninterrupted; the checkpoint in {out} is saved: rerun with --resume", file=sys.stderr
        )
        raise SystemExit(130) from None
    if runtime.main:
        for stage, metrics in results.items():
            print(f"{stage}: " + json.dumps({k: round(v, 4) for k, v in metrics.items()}))


if __name__ == "__main__":
    main()
