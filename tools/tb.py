"""Print a run's TensorBoard scalars: python tools/tb.py runs/NAME/tb/prior [tag-substring ...]"""

from __future__ import annotations

import sys
from pathlib import Path

from worldmodel.evaluation.report import read_scalars


def main() -> None:
    log_dir, wanted = Path(sys.argv[1]), sys.argv[2:]
    for tag, points in sorted(read_scalars(log_dir).items()):
        if wanted and not any(w in tag for w in wanted):
            continue
        tail = points[-8:]
        print(f"{tag:32s} " + "  ".join(f"{s}:{v:.4g}" for s, v in tail))


if __name__ == "__main__":
    main()
