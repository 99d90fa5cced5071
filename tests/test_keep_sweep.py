"""tools/keep_sweep.py: one-step PSNR under several keep_likely values, on the same samples."""

from __future__ import annotations

import pytest

from tests.conftest import save_frame_world_model, script_module, tiny_frame_world_model

main = script_module("tools/keep_sweep.py").main


def _rows(out: str) -> list[list[float]]:
    lines = [line for line in out.splitlines() if line.startswith("| ")]
    return [[float(v) for v in line.strip(" |").split(" | ")] for line in lines[1:]]


def test_one_row_per_value_on_the_same_samples(hg_dataset, tmp_path, capsys):
    model = save_frame_world_model(tiny_frame_world_model(), tmp_path / "wm.pt")
    args = ["--checkpoint", str(model), "--data", str(hg_dataset), "--split", "all",
            "--samples", "6", "--context", "2", "--keep-likely", "0", "1", "0"]  # fmt: skip
    main(args)
    out = capsys.readouterr().out
    rows = _rows(out)
    assert [row[0] for row in rows] == [0, 1, 0]
    assert rows[0][1:] == rows[2][1:]  # the same value on the same samples and seed: the same
    assert all(0 < v <= 60 for row in rows for v in row[1:] if v == v)
    assert "best one step: keep_likely" in out
    assert "copy last frame: all" in out


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--keep-likely", "0.1", "2"], "--keep-likely must be in [0, 1]"),
        (["--samples", "0"], "--samples must be at least 1"),
        (["--split", "training"], "--split must be one of"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(hg_dataset, tmp_path, capsys, extra, message):
    model = save_frame_world_model(tiny_frame_world_model(), tmp_path / "wm.pt")
    with pytest.raises(SystemExit) as e:
        main(["--checkpoint", str(model), "--data", str(hg_dataset), *extra])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
