"""Play speed of this code and its shipped model against an older commit's, in one run.

    python benchmarks/bench_play_vs_old.py --baseline 29a6112 --steps 300 --rounds 3 --threads 1

Checks the baseline commit out into a temporary git worktree and runs each tree's own
``benchmarks/bench_play.py`` with that tree's shipped model, alternating old and new for
``--rounds`` rounds (the host is noisy: alternating keeps both under the same load). Prints each
run's median fps and p95 frame time, the medians over rounds, and the new/old ratio.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def run_bench(tree: Path, steps: int, threads: int, env: str) -> tuple[float, float | None]:
    """(median fps, p95 frame ms or None) of ``tree``'s play benchmark in dream mode."""
    cmd = [
        sys.executable,
        str(tree / "benchmarks" / "bench_play.py"),
        "--checkpoint",
        str(tree / "worldmodel" / "assets" / f"{env}.pt"),
        "--steps",
        str(steps),
        "--configs",
        f"dream:{threads}",
    ]
    environ = {**os.environ, "PYTHONPATH": str(tree), "SDL_VIDEODRIVER": "dummy"}
    with tempfile.TemporaryDirectory() as cwd:  # ViZDoom writes _vizdoom/ into the cwd
        out = subprocess.run(cmd, cwd=cwd, env=environ, capture_output=True, text=True, check=True)
    header: list[str] = []
    for line in out.stdout.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells[0] == "mode":
            header = cells
        elif cells[0] == "dream" and header:
            row = dict(zip(header, cells, strict=True))
            p95 = row.get("p95 frame ms")
            return float(row["median fps"]), float(p95) if p95 else None
    raise RuntimeError(f"no result line from {tree}:\n{out.stdout}\n{out.stderr}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--baseline", default="29a6112", help="git commit to compare against")
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--env", default="health_gathering")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        old = Path(tmp) / "baseline"
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(old), args.baseline],
            check=True,
            capture_output=True,
        )
        try:
            fps: dict[str, list[float]] = {"old": [], "new": []}
            print(
                f"baseline {args.baseline} vs this tree; {args.steps} steps, {args.threads} thread"
            )
            print("| round | tree | median fps | p95 frame ms |\n|---|---|---|---|")
            for r in range(args.rounds):
                for name, tree in (("old", old), ("new", ROOT)):
                    f, p95 = run_bench(tree, args.steps, args.threads, args.env)
                    fps[name].append(f)
                    print(f"| {r + 1} | {name} | {f:.1f} | {p95 if p95 is not None else '-'} |")
            o, n = np.median(fps["old"]), np.median(fps["new"])
            print(f"\nmedian fps: old {o:.1f}, new {n:.1f}; new / old = {n / o:.2f}x")
        finally:
            subprocess.run(
                ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(old)],
                capture_output=True,
            )


if __name__ == "__main__":
    main()
