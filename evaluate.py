"""Evaluate a world model: python evaluate.py --env health_gathering --checkpoint PATH --data DIR
[--split test|all] --i3d PATH/i3d_kinetics400_tfhub_rgb.pt --out DIR [--quick]

Writes DIR/report.md and DIR/metrics.json (and plots, GIFs, contact sheets), each figure beside
its trivial baseline: teacher-forced one step (vs copying the last frame, and the tokenizer's
reconstruction), open loop (vs freezing the last frame), FVD (vs reconstructions and real
clips), action following (inverse dynamics; turning, walking and standing against the real
game), and for a frame prior the game state, standing still until death, random-play episode
lengths and long dreams. Slow parts have switches: --no-fvd, --no-real-game, --long-play 0,
--no-full-context, --one-step 0. Prints a one-line JSON summary.

The dream is sampled the way the model dreams by default (a checkpoint may carry its own
sampling: tools/set_sampling.py); --temperature, --top-p, --keep-likely, --copy-unchanged and
--passes override it setting by setting.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # scipy's sqrtm is much faster single-threaded

import argparse
import json
import sys
import traceback
from pathlib import Path

import torch

from agents.dream.checks import CheckConfig, run_checks
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
from worldmodel.data import DatasetError, load_manifest
from worldmodel.evaluation.pipeline import PARTIAL, EvalConfig, evaluate
from worldmodel.evaluation.report_sections import headline
from worldmodel.world_model import WorldModel


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--env", default=DEFAULT_ENV, help="scenario (default: %(default)s)")
    p.add_argument("--checkpoint", type=Path, help="worldmodel.pt (default: runs/ENV-cpu/)")
    p.add_argument("--data", type=Path, help="dataset folder (default: data/ENV)")
    p.add_argument(
        "--idm-data", type=Path, help="dataset whose train split the IDM learns (default: --data)"
    )
    p.add_argument("--i3d", type=Path, help="I3D weights for FVD (no download: pass the file)")
    p.add_argument(
        "--out", type=Path, help="report folder (default: next to the checkpoint, under runs/)"
    )
    p.add_argument("--quick", action="store_true", help="a small sample (16 clips)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--threads", type=int, help="torch CPU threads")
    p.add_argument("--quiet", action="store_true", help="no progress")
    add_dataclass_flags(p, EvalConfig)
    add_dataclass_flags(p, CheckConfig)
    return p.parse_args(argv)


def summary(m: dict) -> dict:
    """The headline figures, each with its baseline (one step: the dream's own sampling)."""
    one = m.get("one_step", {}).get(headline(m), {})
    out = {
        "arch": m["arch"],
        "one_step_dream": one.get("dream"),
        "one_step_copy": one.get("copy"),
        "one_step_recon": one.get("recon"),
        "open_loop_psnr": m["open_loop"]["psnr_mean"],
        "open_loop_frozen": m["open_loop"]["frozen_psnr_mean"],
        "fvd": m.get("fvd", {}).get("dream_vs_real"),
        "fvd_dream_over_recon": m.get("fvd", {}).get("dream_over_recon"),
        "idm_real": m["action_following"]["idm_accuracy_real"],
        "idm_dream": m["action_following"]["idm_accuracy_dream"],
    }
    if "state" in m:
        out.update(
            health_mae=m["state"]["mae"][0],
            health_keep_last_mae=m["state"]["keep_last_mae"][0],
            death_precision=m["state"]["precision"],
            death_recall=m["state"]["recall"],
        )
    if "reward_termination" in m:
        out["bits_per_dim"] = m["reward_termination"]["bits_per_dim"]
    rg = m.get("real_game", {})
    if "standing_still" in rg:
        out["noop_death_within_15pct"] = rg["standing_still"]["within_tolerance"]
    if "random_length" in rg:
        out["random_length_ratio"] = rg["random_length"]["ratio"]
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in out.items()}


def default_out(checkpoint: Path, quick: bool) -> Path:
    """Next to a checkpoint under runs/; for one elsewhere (the shipped model in the package
    folder), under runs/eval/: a report never lands among the installed files."""
    name = "eval-quick" if quick else "eval"
    if Path("runs").resolve() in checkpoint.resolve().parents:
        return checkpoint.parent / name
    return Path("runs") / "eval" / f"{checkpoint.stem}-{name}"


NOT_PARTS = ("behaviours", "config")  # the run's description, not a measured part


def kept(out: Path) -> str:
    """What a stopped or failed evaluation kept, for its last line."""
    partial = out / PARTIAL
    if partial.exists():
        saved = json.loads(partial.read_text())
        parts = [k for k, v in saved.items() if isinstance(v, dict) and k not in NOT_PARTS]
        return f"the parts measured ({', '.join(parts) or 'none'}) are in {partial}; "
    return "nothing was measured yet; "


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    checkpoint = args.checkpoint or Path("runs") / f"{args.env}-cpu" / "worldmodel.pt"
    data = args.data or Path("data") / args.env
    out = args.out or default_out(checkpoint, args.quick)
    config = dataclass_from_args(EvalConfig, args, EvalConfig.quick() if args.quick else None)
    check_config = dataclass_from_args(
        CheckConfig, args, CheckConfig.quick() if args.quick else None
    )
    with sigterm_as_interrupt():
        try:
            get_scenario(args.env)
            device = validate.evaluate_args(args, config, out)
            note = load_manifest(data, args.env).split_note(data)
            if note:
                print(note)
            if args.threads:
                torch.set_num_threads(args.threads)
            model = WorldModel.load(checkpoint, args.env, device)
            # the model's own sampling, then the flags the user gave
            base = EvalConfig.quick() if args.quick else EvalConfig()
            config = dataclass_from_args(EvalConfig, args, base.with_sampling(model.sampling))

            def checks(model: WorldModel, where: Path) -> dict:
                def say(text: str) -> None:
                    if not args.quiet:
                        print(f"  real game: {text}", file=sys.stderr, flush=True)

                return run_checks(model, check_config, config.sampling, where, config.seed, say)

            metrics = evaluate(
                model,
                data,
                out,
                args.i3d,
                config,
                progress=not args.quiet,
                run_dir=checkpoint.parent,
                checks=checks,
                idm_data=args.idm_data,
            )
        except (UnknownEnvError, CheckpointError, DatasetError, UserError, ValueError) as e:
            fail(str(e))
        except KeyboardInterrupt:
            interrupted(f"{kept(out)}rerun to evaluate")
        except Exception:
            traceback.print_exc()
            print(f"evaluation failed; {kept(out)}report the error above", file=sys.stderr)
            raise SystemExit(1) from None
    print(json.dumps(summary(metrics)))
    print(f"report: {out / 'report.md'}")


if __name__ == "__main__":
    main()
