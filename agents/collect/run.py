"""Roll a policy (plus sticky random exploration) out in many envs at once into a dataset folder.

Each finished episode is written atomically, then the manifest is rewritten atomically, so a
kill loses at most the episodes in flight. Rerunning the same command collects only what is
missing. The dataset format is documented in docs/DATA_FORMAT.md.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from agents.aiming import AIM_STYLES, AimingPolicy
from agents.behaviours import STYLES, HumanLikePolicy, MixturePolicy
from agents.collect.worker import WorkerGroup
from agents.doom_env import FRAME_SKIP, RESOLUTION, make_env
from agents.policies import Policy, RandomPolicy, StickyExploration
from agents.ppo import SHIPPED_AGENTS, PPOConfig, default_agent_path, load_agent, train_ppo
from agents.scenarios import get_scenario
from agents.scoring import score_real
from agents.scripted import Hold
from worldmodel.cli.progress import progress_bar
from worldmodel.data import (
    MANIFEST,
    CorruptEpisodeError,
    DatasetError,
    EpisodeEntry,
    Manifest,
    load_manifest,
    write_manifest,
)
from worldmodel.data.episode import EPISODE_GLOB, episode_index, read_episode_attrs


@dataclass
class CollectConfig:
    env: str = field(default="health_gathering", metadata={"help": "scenario to collect"})
    episodes: int = field(default=200, metadata={"help": "episodes the dataset should hold"})
    policy: str = field(
        default="ppo",
        metadata={
            "help": "ppo, random, sticky_random, human, human_holdout, a path to an agent .pt, "
            "or a mixture "
            "drawn per episode: mix:NAME=WEIGHT,... (e.g. mix:ppo=2,human=1,random=1)"
        },
    )
    epsilon: float = field(
        default=0.3, metadata={"help": "fraction of steps taken by held random actions"}
    )
    sticky_mean: float = field(
        default=4.0, metadata={"help": "mean number of steps a random action is held"}
    )
    n_envs: int = field(default=24, metadata={"help": "games played at once (batched policy)"})
    workers: int = field(default=3, metadata={"help": "processes that step the games"})
    seed: int = field(default=0, metadata={"help": "episode i is reset with seed + i"})


def _existing_entries(out: Path, wanted: int) -> tuple[list[EpisodeEntry], list[int]]:
    """Valid episodes already in ``out`` (all kept), and the indices below ``wanted`` missing."""
    for tmp in out.glob("*.tmp"):  # episodes that were in flight when a run was killed
        tmp.unlink()
    entries: dict[int, EpisodeEntry] = {}
    for path in sorted(out.glob(EPISODE_GLOB)):
        index = episode_index(path)
        try:
            a = read_episode_attrs(path)
        except CorruptEpisodeError as e:
            print(f"warning: {e}; collecting it again")
            continue
        entries[index] = EpisodeEntry(
            index=index,
            file=path.name,
            seed=int(a["seed"]),
            length=int(a["length"]),
            ret=float(a["return"]),
            terminated=bool(a["ended_terminated"]),
            truncated=bool(a["ended_truncated"]),
            behaviour=str(a.get("behaviour", "")),
            end_reason=str(a.get("end_reason", "")),
        )
    missing = [i for i in range(wanted) if i not in entries]
    return [entries[i] for i in sorted(entries)], missing


def check_compatible(out: Path, config: CollectConfig) -> None:
    """Raise DatasetError if ``out`` cannot take episodes of ``config``; writes nothing."""
    get_scenario(config.env)
    if out.exists() and not out.is_dir():
        raise DatasetError(f"--out {out} is a file, not a folder")
    if (out / MANIFEST).exists():
        old = load_manifest(out)
        if not old.has_variables:
            raise DatasetError(
                f"{out} holds data format version {old.format_version} (no game variables); "
                "collect into a new --out"
            )
        if old.env != config.env:
            raise DatasetError(
                f"{out} holds {old.env!r} data; choose another --out for {config.env!r}"
            )
        ours = (config.policy, config.epsilon, config.sticky_mean, config.seed)
        if (old.policy, old.epsilon, old.sticky_mean, old.seed) != ours:
            raise DatasetError(
                f"{out} was collected with --policy {old.policy} --epsilon {old.epsilon} "
                f"--sticky-mean {old.sticky_mean} --seed {old.seed}; rerun with those to add "
                "episodes, or choose another --out"
            )
    elif out.exists() and any(out.glob(EPISODE_GLOB)):
        raise DatasetError(f"{out} holds episode files but no {MANIFEST}; choose another --out")


def open_dataset(out: Path, config: CollectConfig) -> tuple[Manifest, list[int]]:
    """The manifest to extend and the episode indices to collect, or a DatasetError."""
    check_compatible(out, config)
    scenario = get_scenario(config.env)
    game = make_env(config.env)  # the scenario's variables and rules, from its config file
    variable_names, rules = list(game.variable_names), game.rules
    game.close()
    fresh = Manifest(
        env=config.env,
        action_names=list(scenario.action_names),
        buttons=list(scenario.buttons),
        policy=config.policy,
        epsilon=config.epsilon,
        sticky_mean=config.sticky_mean,
        seed=config.seed,
        resolution=[RESOLUTION, RESOLUTION],
        frame_skip=FRAME_SKIP,
        action_counts=[0] * len(scenario.actions),
        variable_names=variable_names,
        rules=rules,
    )
    out.mkdir(parents=True, exist_ok=True)
    entries, missing = _existing_entries(out, config.episodes)
    fresh.episodes = entries
    for e in entries:
        counts = read_episode_attrs(out / e.file)["action_counts"]
        fresh.action_counts = [a + int(b) for a, b in zip(fresh.action_counts, counts, strict=True)]
    write_manifest(out, fresh)
    return fresh, missing


def make_policy(
    config: CollectConfig,
    agents_dir: Path,
    agent: PPOConfig,
    progress: bool = True,
    report_episodes: int = 20,
    shipped: bool = True,
) -> Policy:
    """The policy ``config.policy`` names (see :func:`named_policy`), or a mixture of them:
    ``mix:NAME=WEIGHT,...`` gives each episode one of them, drawn by weight."""
    spec = config.policy
    if not spec.startswith("mix:"):
        return named_policy(spec, config, agents_dir, agent, progress, report_episodes, shipped)
    parts = []
    for k, item in enumerate(spec[len("mix:") :].split(",")):
        name, _, weight = item.partition("=")
        try:
            w = float(weight) if weight else 1.0
        except ValueError:
            msg = f"--policy {spec}: weight {weight!r} of {name!r} is not a number"
            raise ValueError(msg) from None
        sub = replace(config, seed=config.seed + 1000 * (k + 1))
        policy = named_policy(
            name.strip(), sub, agents_dir, agent, progress, report_episodes, shipped
        )
        if not isinstance(
            policy, (RandomPolicy, HumanLikePolicy, AimingPolicy, Hold, StickyExploration)
        ):
            # In a mixture only agents explore (held random actions would break up a
            # human-like walker's long runs); collect() runs the mixture with epsilon 0.
            policy = StickyExploration(policy, config.epsilon, config.sticky_mean, sub.seed)
        parts.append((behaviour_label(name.strip()), policy, w))
    return MixturePolicy(parts, seed=config.seed)


def _action(names: tuple[str, ...], action: str, policy: str) -> int:
    if action not in names:
        raise ValueError(f"--policy {policy} needs the action {action!r}; this env has {names}")
    return names.index(action)


def behaviour_label(name: str) -> str:
    """How episodes name the policy that played them: an agent file by its stem."""
    return Path(name).stem if name.endswith(".pt") else name


def named_policy(
    name: str,
    config: CollectConfig,
    agents_dir: Path,
    agent: PPOConfig,
    progress: bool = True,
    report_episodes: int = 20,
    shipped: bool = True,
) -> Policy:
    """random, human, human_holdout (scripted human-like walkers), aim, aim_holdout (a
    person-like shooter, scenarios with a gun), spin (turn and shoot, held: a blind rule), an
    agent file, or ``ppo``:
    the env's agent in ``agents_dir``, else (``shipped``) the one shipped with the package
    (``agents/assets/ENV_ppo.pt``), else one trained first with ``agent`` and then scored
    against a random policy over ``report_episodes`` episodes each."""
    scenario = get_scenario(config.env)
    n_actions = len(scenario.actions)
    if name == "random":
        return RandomPolicy(n_actions, seed=config.seed)
    if name == "sticky_random":  # random actions, each held for a while like a pressed key
        return StickyExploration(RandomPolicy(n_actions, config.seed), 1.0, config.sticky_mean)
    if name in STYLES:
        return HumanLikePolicy(scenario.action_names, name, seed=config.seed)
    if name in AIM_STYLES:
        return AimingPolicy(scenario.action_names, name, seed=config.seed)
    if name == "spin":
        return Hold(_action(scenario.action_names, "attack_right", name), n_actions)
    if name != "ppo":
        return load_agent(Path(name), config.env, seed=config.seed)
    path = default_agent_path(config.env, agents_dir)
    packaged = SHIPPED_AGENTS / f"{config.env}_ppo.pt"
    if not path.exists() and shipped and packaged.is_file():
        print(
            f"--policy ppo: playing the shipped agent {packaged} (no agent of your own at "
            f"{path}; --train-agent trains one there instead)"
        )
        return load_agent(packaged, config.env, seed=config.seed)
    if not path.exists():
        print(
            f"no PPO agent for {config.env} at {path}: training one ({agent.steps} steps, "
            f"TensorBoard logs in {path.parent / 'tb'})"
        )
        train_ppo(
            config.env, path, agent, tensorboard_dir=path.parent / "tb", progress_bar=progress
        )
        if report_episodes > 0:
            trained = load_agent(path, config.env)
            agent_r = score_real(trained, config.env, report_episodes).returns
            random_r = score_real(RandomPolicy(n_actions, 1), config.env, report_episodes).returns
            print(
                f"agent return {agent_r.mean():.0f} ± {agent_r.std():.0f} vs random "
                f"{random_r.mean():.0f} ± {random_r.std():.0f} ({report_episodes} episodes each)"
            )
    return load_agent(path, config.env, seed=config.seed)


@dataclass
class CollectResult:
    manifest: Manifest
    new_frames: int  # frames written by this run (resumed runs skip what was on disk)
    seconds: float


def collect(
    out: Path,
    config: CollectConfig,
    policy: Policy,
    progress: bool = True,
    on_episode: Callable[[int], None] | None = None,
) -> CollectResult:
    """Collect the episodes ``out`` is missing.

    The games run in ``config.workers`` processes, in as many groups; while one group steps,
    the policy acts for another. ``on_episode(index)`` is called after each episode is safely
    on disk and in the manifest (tests use it to simulate a kill).
    """
    t0 = time.perf_counter()
    manifest, todo = open_dataset(out, config)
    before = sum(e.length + 1 for e in manifest.episodes)
    if not todo:
        return CollectResult(manifest, 0, time.perf_counter() - t0)
    n_groups = max(1, min(config.workers, len(todo)))
    games = max(1, min(config.n_envs, len(todo)) // n_groups)
    attrs = {"env": config.env, "policy": config.policy, "epsilon": config.epsilon}
    groups: list[WorkerGroup] = []
    epsilon = 0.0 if config.policy.startswith("mix:") else config.epsilon  # see make_policy
    explorers = [
        StickyExploration(
            _SlotOffset(policy, g * games, behaviour_label(config.policy)),
            epsilon,
            config.sticky_mean,
            config.seed + g,
        )
        for g in range(n_groups)
    ]
    bar = progress_bar(len(todo), f"collect {config.env}", "ep", progress)
    # The workers need the cores; a second torch thread for the policy's small batches costs
    # more in hand-offs than it gains (bench_collect: ~1,190 vs ~910 frames/s on 2 cores).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for g in range(n_groups):  # in the try: a Ctrl-C while starting closes those started
            groups.append(
                WorkerGroup(config.env, out, todo[g::n_groups], games, config.seed, attrs)
            )
        running = [True] * n_groups
        for g, group in enumerate(groups):  # each worker first reports its games' start
            obs, active, _, _ = group.receive()
            running[g] = bool(active.any())
            _send(group, explorers[g], obs, active)
        while any(running):
            for g, group in enumerate(groups):
                if not running[g]:
                    continue
                obs, active, finished, restarted = group.receive()
                for slot in restarted:
                    explorers[g].reset_env(slot)
                for _, entry, counts in finished:
                    _record(out, manifest, entry, counts)
                    bar.update(1)
                    bar.set_postfix(ret=f"{entry.ret:.0f}")
                    if on_episode is not None:
                        on_episode(entry.index)
                running[g] = bool(active.any())
                if running[g]:
                    _send(group, explorers[g], obs, active)
    except KeyboardInterrupt:
        for group in groups:  # the workers finish writing the episodes they have ended
            group.close()
        open_dataset(out, config)  # ... and those join the manifest; games in flight are lost
        raise
    finally:
        torch.set_num_threads(threads)
        bar.close()
        for group in groups:
            group.close()
    new_frames = sum(e.length + 1 for e in manifest.episodes) - before
    return CollectResult(manifest, new_frames, time.perf_counter() - t0)


class _SlotOffset:
    """One worker group's view of a policy shared by all groups: its env slots are numbered
    after the earlier groups', so a policy with per-slot state keeps them apart."""

    def __init__(self, policy: Policy, offset: int, name: str) -> None:
        self.policy, self.offset, self.n_actions = policy, offset, policy.n_actions
        self.name = name

    def act(self, obs: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        rows = np.arange(len(obs)) if rows is None else np.asarray(rows)
        return self.policy.act(obs, rows + self.offset)

    def reset_env(self, slot: int) -> None:
        reset = getattr(self.policy, "reset_env", None)
        if reset is not None:
            reset(slot + self.offset)

    def behaviours(self, n: int) -> list[str]:
        names = getattr(self.policy, "behaviours", None)
        if names is None:
            return [self.name] * n
        return names(self.offset + n)[self.offset :]


def _send(
    group: WorkerGroup, explorer: StickyExploration, obs: np.ndarray, active: np.ndarray
) -> None:
    actions = explorer.act(obs)
    group.send_step(actions, explorer.last_explored & active, explorer.behaviours(len(obs)))


def _record(out: Path, manifest: Manifest, entry: EpisodeEntry, counts: list[int]) -> None:
    manifest.episodes.append(entry)
    manifest.episodes.sort(key=lambda e: e.index)
    manifest.action_counts = [a + b for a, b in zip(manifest.action_counts, counts, strict=True)]
    write_manifest(out, manifest)
