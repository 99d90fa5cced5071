"""Checks of command-line values, run by every entry point before any work starts.

Each check raises :class:`~worldmodel.cli.args.UserError` with one line that names the flag, its
value and what would be accepted; the entry point prints it as ``error: ...`` and exits 2.
Nothing here creates or changes a file (a check may read one): a refused command leaves the disk
as it was.
The ``*_args`` functions at the end hold each command's rules, so they are read in one place.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from worldmodel.cli.args import UserError

DEVICES = ("auto", "cpu", "cuda")
FRAME_BYTES = 64 * 64 * 3  # one uint8 frame
GAME_BYTES = 17 * 2**20  # one ViZDoom game process (docs: NOTES)
EPISODE_BYTES = 4096  # the smallest episode file (HDF5 header, two compressed frames)
MAX_SCALE = 16  # a 64x64 frame at 16x already fills a 1024-pixel-high screen


def at_least(flag: str, value: float | None, low: float) -> None:
    """``value`` >= ``low`` (None: the flag was not given, nothing to check)."""
    if value is not None and not value >= low:
        raise UserError(f"{flag} must be at least {low}, got {value}")


def above(flag: str, value: float | None, low: float) -> None:
    if value is not None and not value > low:
        raise UserError(f"{flag} must be greater than {low}, got {value}")


def between(flag: str, value: float | None, low: float, high: float) -> None:
    if value is not None and not low <= value <= high:
        raise UserError(f"{flag} must be in [{low}, {high}], got {value}")


def one_of(flag: str, value: str, choices: Iterable[str]) -> None:
    if value not in choices:
        raise UserError(f"{flag} must be one of {', '.join(choices)}, got {value!r}")


def device(name: str) -> str:
    """The device ``--device name`` means here: ``cpu`` or ``cuda`` (``auto`` picks)."""
    import torch

    one_of("--device", name, DEVICES)
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda: this machine has no CUDA GPU; use --device cpu")
    return name


def existing_file(flag: str, path: Path | None, hint: str = "") -> None:
    if path is not None and not path.is_file():
        what = "a folder, not a file" if path.is_dir() else "no such file"
        raise UserError(f"{flag} {path}: {what}{'; ' + hint if hint else ''}")


I3D_HINT = "pass the path to i3d_kinetics400_tfhub_rgb.pt (README: FVD and the I3D weights)"


def json_file(flag: str, path: Path, hint: str = "") -> Any:
    """The JSON in ``path`` (read, never changed), or one line saying why it cannot be read."""
    existing_file(flag, path, hint)
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as e:
        why = e.strerror if isinstance(e, OSError) else f"not valid JSON: {type(e).__name__}"
        raise UserError(f"{flag} {path} cannot be read ({why}); fix or remove it") from None


def json_object(flag: str, path: Path, hint: str = "") -> dict[str, Any]:
    """:func:`json_file` of a file that must hold an object (a card, metrics.json)."""
    data = json_file(flag, path, hint)
    if not isinstance(data, dict):
        raise UserError(f"{flag} {path} should hold a JSON object; fix or remove it")
    return data


def writable_dir(flag: str, path: Path, given: Path | None = None) -> None:
    """``path`` is a folder, or can be made one, and files can be written in it (``given``:
    what the user typed, if ``path`` is its folder)."""
    given = given or path
    base = path
    while not base.exists():
        base = base.parent
    if not base.is_dir():
        if base == given:
            raise UserError(f"{flag} {given} is a file, not a folder; choose another {flag}")
        raise UserError(f"{flag} {given}: {base} is a file, so no folder can be made under it")
    try:  # a real write: permission bits do not tell root, a read-only mount or a full quota
        with tempfile.TemporaryFile(dir=base):
            pass
    except OSError as e:
        raise UserError(f"{flag} {given}: cannot write in {base} ({e.strerror})") from None


def writable_file(flag: str, path: Path) -> None:
    """A file can be written at ``path`` (an existing file there would be replaced)."""
    if path.is_dir():
        raise UserError(f"{flag} {path} is a folder; give a file name")
    writable_dir(flag, path.parent, path)


def _human(n: float) -> str:
    for unit in ("bytes", "KB", "MB", "GB", "TB", "PB"):
        if n < 1024 or unit == "PB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def memory_bytes(on: str = "cpu") -> int:
    """Memory of the machine (``cpu``) or of the GPU (``cuda``)."""
    if on.startswith("cuda"):
        import torch

        return int(torch.cuda.get_device_properties(0).total_memory)
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def fits_in_memory(
    flag: str, count: int, each: int, what: str, on: str = "cpu", besides: str = ""
) -> None:
    """``count`` items of at least ``each`` bytes fit in memory (a lower bound, never a guess
    that could refuse a run that would fit). The refusal names the most that could fit at all
    without calling it safe: the run needs memory besides (``besides`` says what)."""
    have = memory_bytes(on)
    if count * each > have:
        most = max(1, have // each)
        raise UserError(
            f"{flag} {count}: {what} alone need at least {_human(count * each)}, more than "
            f"the {_human(have)} of {'GPU ' if on.startswith('cuda') else ''}memory here; "
            f"{most:,} would fill it, and {besides or 'the run needs memory besides'}: "
            f"use well under {most:,}"
        )


def fits_on_disk(flag: str, count: int, each: int, folder: Path, what: str) -> None:
    base = folder
    while not base.exists():
        base = base.parent
    free = shutil.disk_usage(base).free
    if count * each > free:
        raise UserError(
            f"{flag} {count}: {what} need at least {_human(count * each)} of disk, and "
            f"{base} has {_human(free)} free; use at most {max(1, free // each)}"
        )


# --- each command's rules -------------------------------------------------------------------

TRAIN_RULES: dict[str, tuple[Callable[[str, float | None, float], None], float]] = {
    "steps": (at_least, 1),
    "batch_size": (at_least, 1),
    "lr": (above, 0),
    "warmup": (at_least, 0),
    "weight_decay": (at_least, 0),
    "grad_clip": (at_least, 0),
    "eval_every": (at_least, 1),
    "save_every": (at_least, 1),
    "log_every": (at_least, 1),
    "minutes": (above, 0),
    "num_workers": (at_least, 0),
}


# --set sections whose fields are weights, step counts or sizes (the decoder stage's, the
# adversarial tokenizer's): what each field must be, wherever a section has it
SECTION_RULES: dict[str, tuple[Callable[[str, float | None, float], None], float]] = {
    "l1_weight": (at_least, 0),
    "adv_weight": (at_least, 0),
    "fm_weight": (at_least, 0),
    "gan_start": (at_least, 0),
    "gan_ramp": (at_least, 0),
    "disc_channels": (at_least, 1),
    "disc_layers": (at_least, 1),
    "disc_lr": (above, 0),
    "window": (at_least, 1),
}


def section_config(section: str, config: Any) -> None:
    """The fields of ``--set section.field=...``'s resolved ``config`` within their ranges."""
    for name, (rule, bound) in SECTION_RULES.items():
        if hasattr(config, name):
            rule(f"--set {section}.{name}", getattr(config, name), bound)


def train_config(config: Any) -> None:
    """A :class:`~worldmodel.training.loop.TrainConfig` whose values a run can use."""
    for name, (rule, bound) in TRAIN_RULES.items():
        rule("--" + name.replace("_", "-"), getattr(config, name), bound)
    from worldmodel.precision import PRECISIONS

    between("--min-lr-ratio", config.min_lr_ratio, 0, 1)
    one_of("--precision", config.precision, PRECISIONS)


def precision_fits(config: Any, dev: str) -> None:
    """bf16 on a CPU without bf16 units is emulated, many times slower than fp32: refuse it."""
    from worldmodel.precision import cpu_bf16_units

    if config.precision == "bf16" and dev == "cpu" and not cpu_bf16_units():
        raise UserError(
            "--precision bf16: this CPU has no bf16 units (no amx_bf16 or avx512_bf16 in "
            "/proc/cpuinfo), where bf16 runs many times slower; use --precision fp32"
        )


def clip_bytes(stage: str, preset: str, overrides: list[str]) -> int:
    """A lower bound of the memory one training clip of ``stage`` takes: its frames as float32
    (tokenizer), or its logits over the codebook (prior)."""
    from worldmodel.cli.overrides import apply_overrides
    from worldmodel.config import PRIOR_PRESETS, VQVAE_PRESETS, prior_config_for

    vqvae = apply_overrides(VQVAE_PRESETS[preset], "vqvae", overrides)
    if stage == "vqvae":
        return vqvae.clip_len * FRAME_BYTES * 4
    base = prior_config_for(PRIOR_PRESETS[preset], vqvae, 1)
    prior = apply_overrides(base, "prior", overrides)
    return prior.block_size * prior.n_codes * 4


def train_args(args: argparse.Namespace, configs: dict[str, Any], out: Path) -> str:
    """Check train.py's flags and the stages' resolved ``configs``; return the device."""
    dev = device(args.device)
    at_least("--threads", args.threads, 1)
    # every override now (both sections are applied here), not when the prior starts after an
    # hour of tokenizer training
    for item in args.overrides:
        sections = (
            ("vqvae", "decoder") if args.stage == "decoder" else ("vqvae", "gan", "prior", "frame")
        )
        if "=" in item and item.partition(".")[0] not in sections:
            raise UserError(f"--set {item}: the section must be {', '.join(sections)}")
    for stage in ("vqvae", "prior"):
        each = clip_bytes(stage, args.preset, args.overrides)
        if stage in configs:
            train_config(configs[stage])
            precision_fits(configs[stage], dev)
            fits_in_memory(
                "--batch-size",
                configs[stage].batch_size,
                each,
                "its clips",
                dev,
                "training takes many times its clips (activations; README: memory per preset)",
            )
    for flag in ("--agent-steps", "--agent-envs", "--episodes", "--action-repeat"):
        at_least(flag, getattr(args, flag[2:].replace("-", "_")), 1)
    for temperature in args.temperature:
        between("--temperature", temperature, 0, 3)
    between("--state-temperature", args.state_temperature, 0, 3)
    between("--state-change-odds", args.state_change_odds, 0.01, 1000)
    at_least("--dream-steps", args.dream_steps, 1)
    at_least("--n-steps", args.n_steps, 2)
    at_least("--damage-penalty", args.damage_penalty, 0)
    at_least("--agent-eval-every", args.agent_eval_every, 0)
    at_least("--exploit-starts", args.exploit_starts, 0)
    if args.stage == "agent":
        fits_in_memory("--agent-envs", args.agent_envs, GAME_BYTES, "the games")
    at_least("--passes", args.passes, 1)
    existing_file("--i3d", args.i3d, I3D_HINT)
    existing_file("--checkpoint", args.checkpoint)
    if args.stage == "decoder" and args.checkpoint is not None:
        from worldmodel.checkpoint import KINDS

        # the stage writes OUT/decoder.pt, then OUT/KIND.pt: never over the file it tunes
        if args.checkpoint.resolve() in {(out / f"{kind}.pt").resolve() for kind in KINDS}:
            raise UserError(
                f"--checkpoint {args.checkpoint} would be overwritten: --stage decoder writes "
                f"its result to {out / args.checkpoint.name}; pass another --out (e.g. "
                f"--out {out / 'decoder'})"
            )
    writable_dir("--out", out)
    return dev


def collect_args(config: Any, agent_steps: int, out: Path) -> None:
    """Check collect.py's flags (``config`` is its resolved ``CollectConfig``)."""
    at_least("--episodes", config.episodes, 1)
    at_least("--n-envs", config.n_envs, 1)
    at_least("--workers", config.workers, 1)
    at_least("--agent-steps", agent_steps, 1)
    at_least("--seed", config.seed, 0)
    between("--epsilon", config.epsilon, 0, 1)
    at_least("--sticky-mean", config.sticky_mean, 1)
    fits_in_memory("--n-envs", config.n_envs, GAME_BYTES, "the games")
    writable_dir("--out", out)
    fits_on_disk("--episodes", config.episodes, EPISODE_BYTES, out, "the episode files")


def evaluate_args(args: argparse.Namespace, config: Any, out: Path) -> str:
    """Check evaluate.py's flags (``config`` is its resolved ``EvalConfig``); the device."""
    from worldmodel.data.manifest import SPLITS

    dev = device(args.device)
    at_least("--threads", args.threads, 1)
    one_of("--split", config.split, (*SPLITS, "all"))
    for flag in ("clips", "horizon", "idm_steps", "idm_transitions", "batch"):
        at_least("--" + flag.replace("_", "-"), getattr(config, flag), 1)
    at_least("--context", config.context, 1)
    at_least("--temperature", config.temperature, 0)
    between("--top-p", config.top_p, 0.01, 1)
    between("--keep-likely", config.keep_likely, 0, 1)
    at_least("--passes", config.passes, 1)
    frames = config.horizon + (config.context or config.horizon)
    fits_in_memory("--clips", config.clips, 2 * frames * FRAME_BYTES, "the real and dreamed clips")
    existing_file("--i3d", args.i3d, I3D_HINT)
    if args.i3d is not None and getattr(config, "fvd", True) and config.horizon < 9:
        raise UserError("FVD needs at least 9 frames per clip: use --horizon 16 or --no-fvd")
    writable_dir("--out", out)
    return dev


PLAY_POLICIES = ("human", "random", "agent", "script:FILE")


def play_args(args: argparse.Namespace) -> str:
    """Check play.py's flags; return the device."""
    dev = device(args.device)
    at_least("--threads", args.threads, 1)
    at_least("--fps", args.fps, 0)
    between("--scale", args.scale, 1, MAX_SCALE)
    between("--temperature", args.temperature, 0, 3)  # the range T/G move it in
    between("--top-p", args.top_p, 0.01, 1)
    between("--keep-likely", args.keep_likely, 0, 1)
    at_least("--passes", args.passes, 1)
    at_least("--steps", args.steps, 1)
    at_least("--seed", args.seed, 0)
    policy = args.policy or "human"
    if policy.startswith("script:"):
        existing_file("--policy", Path(policy[len("script:") :]))
    elif policy not in PLAY_POLICIES[:3]:
        raise UserError(f"--policy must be one of {', '.join(PLAY_POLICIES)}, got {policy!r}")
    existing_file("--agent", args.agent)
    existing_file("--checkpoint", args.checkpoint)
    if args.record is not None:
        if args.record.suffix.lower() not in (".mp4", ".gif"):
            raise UserError(f"--record needs a .mp4 or .gif file name, got {args.record.name!r}")
        writable_file("--record", args.record)
    return dev
