"""Train the world model: python train.py --env health_gathering --stage all --preset cpu

Stages: ``vqvae`` (the tokenizer), ``prior`` (the action-conditioned GPT over its codes; needs
a trained tokenizer in --out), ``all`` (both in turn), ``agent`` (PPO trained only inside the
dream, then scored in the real game next to PPO trained in the real game for as many steps),
``decoder`` (fine-tune only the decoder of --checkpoint's tokenizer, codes frozen, with an
adversarial loss; writes OUT/decoder.pt and --checkpoint with that decoder in OUT).
Checkpoints, TensorBoard logs and sample GIFs go to --out (default runs/ENV-PRESET).
Multi-GPU: torchrun --nproc_per_node N train.py ... (the same flags).
"""

from __future__ import annotations

import argparse
import json
from contextlib import nullcontext
from pathlib import Path

import torch

from agents.ppo import AgentError, PPOConfig
from agents.scenarios import DEFAULT_ENV, UnknownEnvError, get_scenario
from worldmodel.checkpoint import CheckpointError
from worldmodel.cli import validate
from worldmodel.cli.args import (
    UserError,
    add_dataclass_flags,
    dataclass_from_args,
    fail,
    interrupted,
    sigterm_as_interrupt,
)
from worldmodel.cli.overrides import apply_overrides
from worldmodel.config import PRESETS
from worldmodel.data import DatasetError, load_manifest
from worldmodel.training.lock import run_lock
from worldmodel.training.loop import Runtime, TrainConfig, setup_runtime
from worldmodel.training.presets import TRAIN_PRESETS
from worldmodel.training.run import train_decoder, train_prior, train_tokenizer
from worldmodel.world_model import shipped_checkpoint

STAGES = ("vqvae", "prior", "all", "agent", "decoder")


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
        help="override a config field: --set vqvae.attention=false, --set decoder.adv_weight=1, "
        "--set gan.enabled=true (an adversarial tokenizer)",
    )
    p.add_argument(
        "--prior-arch",
        choices=("frame", "raster"),
        help="frame: the frame-parallel prior with game state (default for tiny/cpu); "
        "raster: the paper's code-by-code prior (default for paper)",
    )
    p.add_argument(
        "--init-prior",
        type=Path,
        metavar="CKPT",
        help="--stage prior: start from this frame-prior model's weights and tokenizer "
        "(a fine-tune; e.g. worldmodel/assets/ENV.pt with --set frame.reveal=true)",
    )
    p.add_argument(
        "--init-dynamics",
        type=Path,
        metavar="CKPT",
        help="--stage prior: start from this frame-prior model's dynamics (all but its code "
        "embeddings and head) over a new tokenizer's codes, e.g. 16x16 codes in 2x2 tokens "
        "(--set vqvae.space_down=4 --set frame.group=2) after an 8x8 model",
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
    agent = p.add_argument_group("--stage agent / decoder")
    agent.add_argument(
        "--checkpoint",
        type=Path,
        help="world model (agent; default: OUT/worldmodel.pt), or the checkpoint whose decoder "
        "to fine-tune (decoder: worldmodel, prior or vqvae)",
    )
    agent.add_argument("--agent-steps", type=int, default=100_000, help="PPO steps per agent")
    agent.add_argument("--agent-envs", type=int, default=16, help="dreams (or games) at once")
    agent.add_argument(
        "--n-steps",
        type=int,
        default=PPOConfig.n_steps,
        help="PPO decisions per env between updates (fewer: more updates per env step)",
    )
    agent.add_argument("--episodes", type=int, default=100, help="real episodes scoring each")
    agent.add_argument(
        "--agent-seed", type=int, default=0, help="PPO's seed (another one: a replicate run)"
    )
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
    agent.add_argument(
        "--state-change-odds",
        type=float,
        default=1.0,
        help="multiply the odds that the dreamed HEALTH changes in a step: more hits and "
        "deaths, but also more pickups (> 1 is harder where changes are losses, as in take_cover)",
    )
    agent.add_argument(
        "--damage-penalty",
        type=float,
        default=0.0,
        help="reward lost per point of dreamed health lost, in training only (default 0)",
    )
    agent.add_argument(
        "--passes",
        type=int,
        help="passes per dreamed frame (default: the world model's own sampling, as play uses)",
    )
    agent.add_argument("--dream-steps", type=int, help="cut dreams after this many steps")
    agent.add_argument(
        "--prev-action",
        action="store_true",
        help="show the agent its last action beside the frame (lets it keep a direction)",
    )
    agent.add_argument(
        "--action-repeat",
        type=int,
        default=1,
        help="hold each of the agent's decisions for this many steps (default 1: every step)",
    )
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
    return dataclass_from_args(TrainConfig, args, TRAIN_PRESETS[stage][args.preset])


def check_args(args: argparse.Namespace, out: Path, data: Path) -> str:
    """Every flag and path, before any work starts; returns the device."""
    get_scenario(args.env)
    stages = {"vqvae": ["vqvae"], "prior": ["prior"], "all": ["vqvae", "prior"]}
    configs = (
        {} if args.quickstart else {s: train_config(args, s) for s in stages.get(args.stage, [])}
    )
    device = validate.train_args(args, configs, out)
    if args.stage == "decoder":
        from worldmodel.training.decoder_stage import DecoderTuneConfig

        tune = apply_overrides(DecoderTuneConfig(), "decoder", args.overrides)
        validate.section_config("decoder", tune)
    if args.stage in ("vqvae", "all"):
        from worldmodel.training.adversarial import AdversarialConfig

        validate.section_config("gan", apply_overrides(AdversarialConfig(), "gan", args.overrides))
    if args.quickstart:
        validate.writable_dir("--data", data)
    elif args.stage == "agent" and args.data is None and not data.is_dir():
        pass  # the dreams start from the real windows shipped in the world model
    else:
        note = load_manifest(data, args.env).split_note(data)
        if note:
            print(note)
    return device


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
    # --stage all --resume continues what there is: a run stopped during the tokenizer has no
    # prior yet, and its prior starts when the tokenizer is done
    resume = args.resume and (args.stage == "prior" or (out / "prior.pt").exists())
    return train_prior(
        args.env,
        data,
        out,
        args.preset,
        train_config(args, "frame" if arch == "frame" else "prior"),
        runtime,
        args.overrides,
        resume,
        not args.quiet,
        arch,
        not args.no_state,
        init=args.init_prior,
        init_dynamics=args.init_dynamics,
    )


def resume_hint(args: argparse.Namespace, out: Path) -> str:
    """After Ctrl-C: what is saved and the command that continues it."""
    if args.quickstart:
        return f"finished stages are kept in {out}: rerun the same command to resume"
    if args.stage == "agent":
        how = "the same command" if args.resume else "the same command with --resume"
        return f"the agents' training so far is saved in {out / 'agents'}: rerun {how} to continue"
    stages = ["vqvae", "prior"] if args.stage == "all" else [args.stage]
    saved = [f"{s}.pt" for s in stages if (out / f"{s}.pt").exists()]
    if not saved:
        return f"no checkpoint was written to {out} yet: rerun the same command to start again"
    return f"{' and '.join(saved)} in {out} saved: rerun with --resume to continue"


def run_decoder(args: argparse.Namespace, runtime: Runtime, out: Path, data: Path) -> dict:
    if args.checkpoint is None:
        raise UserError(
            "--stage decoder needs --checkpoint: the world model (or tokenizer) to fine-tune, "
            "e.g. worldmodel/assets/health_gathering.pt"
        )
    return train_decoder(
        args.env,
        data,
        out,
        args.checkpoint,
        args.preset,
        train_config(args, "decoder"),
        runtime,
        args.overrides,
        args.resume,
        not args.quiet,
    )


def run_agent(args: argparse.Namespace, runtime: Runtime, out: Path, data: Path) -> dict:
    from agents.dream.experiment import Experiment, run_experiment
    from agents.dream.training import DreamConfig, EvalConfig

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
        PPOConfig(
            steps=args.agent_steps,
            n_envs=args.agent_envs,
            n_steps=args.n_steps,
            prev_action=args.prev_action,
            action_repeat=args.action_repeat,
            seed=args.agent_seed,
        ),
        tuple(args.temperature),
        DreamConfig(
            state_temperature=args.state_temperature,
            max_steps=args.dream_steps,
            state_change_odds=args.state_change_odds,
            damage_penalty=args.damage_penalty,
            passes=args.passes,
        ),
        EvalConfig(every=args.agent_eval_every),
        args.episodes,
        not args.no_baseline,
        args.exploit_starts,
    )
    folder = out / "agents"
    results = run_experiment(experiment, folder, args.resume, str(runtime.device), not args.quiet)
    print((folder / "results.md").read_text())
    tb = f"tensorboard --logdir {folder / 'tb'}"
    print(f"results: {folder / 'results.md'} (plot results.png beside it; curves: {tb})")
    return {a["name"]: a["return_mean"] for a in results["agents"]}


def run_quickstart(args: argparse.Namespace, runtime: Runtime, out: Path, data: Path) -> None:
    from agents.quickstart import QuickstartPlan, quickstart

    if args.preset == "paper":
        raise UserError("--quickstart is for CPU presets (cpu, tiny); train paper size by stage")
    plan = QuickstartPlan.tiny() if args.preset == "tiny" else QuickstartPlan()
    quickstart(args.env, data, out, runtime, plan, args.agents_dir, args.i3d, not args.quiet)


def default_out(args: argparse.Namespace) -> Path:
    """Where a run goes without --out: runs/ENV-PRESET; dream agents of a given world model go
    beside it when it is under runs/, else to runs/ENV-shipped for the shipped model or
    runs/NAME for a model file elsewhere (never among the installed files)."""
    checkpoint = args.checkpoint
    if args.stage != "agent" or checkpoint is None:
        return Path("runs") / f"{args.env}-{args.preset}"
    if Path("runs").resolve() in checkpoint.resolve().parents:
        return checkpoint.parent
    shipped = shipped_checkpoint(args.env)
    if shipped is not None and checkpoint.resolve() == shipped.resolve():
        return Path("runs") / f"{args.env}-shipped"
    return Path("runs") / checkpoint.stem


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    out = args.out or default_out(args)
    data = args.data or Path("data") / args.env
    with sigterm_as_interrupt():
        try:
            device = check_args(args, out, data)
            if args.threads:
                torch.set_num_threads(args.threads)
            runtime = setup_runtime(device)
            results = {}
            with run_lock(out) if runtime.main else nullcontext():
                if args.quickstart:
                    run_quickstart(args, runtime, out, data)
                    return
                if args.stage in ("vqvae", "all"):
                    results["vqvae"] = run_vqvae(args, runtime, out, data)
                if args.stage in ("prior", "all"):
                    results["prior"] = run_prior(args, runtime, out, data)
                if args.stage == "agent":
                    results["agent"] = run_agent(args, runtime, out, data)
                if args.stage == "decoder":
                    results["decoder"] = run_decoder(args, runtime, out, data)
        except (UserError, DatasetError, CheckpointError, UnknownEnvError, AgentError) as e:
            fail(str(e))
        except KeyboardInterrupt:
            interrupted(resume_hint(args, out))
    if runtime.main:
        for stage, metrics in results.items():
            print(f"{stage}: " + json.dumps({k: round(v, 4) for k, v in metrics.items()}))
        if "prior" in results:
            model = out / "worldmodel.pt"
            print(f"world model: {model}")
            print(f"play it: python play.py --env {args.env} --checkpoint {model}")


if __name__ == "__main__":
    main()
