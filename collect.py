"""Collect a ViZDoom dataset: python collect.py --env health_gathering --episodes 200 --out data/hg

With ``--policy ppo`` it plays your agent (``--agents-dir``), else the one shipped with the package,
else (or with ``--train-agent``) trains one first (``--agent-steps``).
"""

from __future__ import annotations

import os

# Tiny matrix products (frame resizing) lose more to BLAS thread hand-offs than they gain, and
# those threads compete with torch's and ViZDoom's for the cores.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
from pathlib import Path

from agents import UnknownEnvError, get_scenario
from agents.collect.run import CollectConfig, check_compatible, collect, make_policy
from agents.ppo import DEFAULT_AGENTS_DIR, AgentError, PPOConfig
from worldmodel.cli import validate
from worldmodel.cli.args import (
    UserError,
    add_dataclass_flags,
    dataclass_from_args,
    fail,
    interrupted,
    sigterm_as_interrupt,
)
from worldmodel.data import MANIFEST, DatasetError, load_manifest


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    add_dataclass_flags(p, CollectConfig)
    p.add_argument("--out", type=Path, help="dataset folder (default: data/ENV)")
    p.add_argument(
        "--agent-steps",
        type=int,
        default=PPOConfig.steps,
        help="PPO training budget in env steps, if an agent must be trained first",
    )
    p.add_argument(
        "--agents-dir",
        type=Path,
        default=DEFAULT_AGENTS_DIR,
        help="where trained agents live: AGENTS_DIR/ENV/ppo.pt",
    )
    p.add_argument(
        "--train-agent",
        action="store_true",
        help="--policy ppo: train an agent into --agents-dir even where one ships with the "
        "package (default: play the shipped agent when there is no agent of your own)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    config = dataclass_from_args(CollectConfig, args)
    out = args.out or Path("data") / config.env
    with sigterm_as_interrupt():
        try:
            get_scenario(config.env)
            validate.collect_args(config, args.agent_steps, out)
            check_compatible(out, config)
            agent = PPOConfig(steps=args.agent_steps, seed=config.seed)
            policy = make_policy(
                config, args.agents_dir, agent, not args.quiet, shipped=not args.train_agent
            )
            result = collect(out, config, policy, progress=not args.quiet)
        except (UnknownEnvError, DatasetError, AgentError, UserError) as e:
            fail(str(e))
        except KeyboardInterrupt:
            saved = len(load_manifest(out).episodes) if (out / MANIFEST).exists() else 0
            interrupted(
                f"{saved} of {config.episodes} episodes are saved in {out} (episodes in play "
                "are dropped): rerun the same command to collect the rest"
            )
    manifest = result.manifest
    total = sum(e.length + 1 for e in manifest.episodes)
    size = sum((out / e.file).stat().st_size for e in manifest.episodes)
    mean_return = sum(e.ret for e in manifest.episodes) / len(manifest.episodes)
    print(
        f"{out}: {len(manifest.episodes)} episodes, {total} frames, "
        f"{size / total:.0f} bytes/frame, mean return {mean_return:.1f}"
    )
    if result.new_frames:
        print(
            f"collected {result.new_frames} frames in {result.seconds:.1f} s "
            f"({result.new_frames / result.seconds:.0f} frames/s)"
        )


if __name__ == "__main__":
    main()
