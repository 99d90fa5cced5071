"""tools/code_stability.py: how often codes stay put, and what sticky quantisation keeps."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.conftest import save_frame_world_model, script_module, tiny_frame_world_model

_tool = script_module("tools/code_stability.py")
main, sticky_codes = _tool.main, _tool.sticky_codes


def test_sticky_codes_keep_a_code_only_while_it_is_nearly_the_nearest():
    # one place, three steps, three codes: step 1's nearest moves to code 1, step 2's to code 2
    d = torch.tensor([[0.0, 5.0, 9.0], [2.0, 1.5, 9.0], [9.0, 3.0, 1.0]]).view(3, 1, 1, 3)
    assert sticky_codes(d, 0.0).flatten().tolist() == [0, 1, 2]  # plain nearest code
    assert sticky_codes(d, 0.5).flatten().tolist() == [0, 0, 2]  # 2.0 <= 1.5 x 1.5; 9 > 1.5
    assert sticky_codes(d, 100.0).flatten().tolist() == [0, 0, 0]


def test_the_tool_prints_one_row_per_tau_and_refuses_bad_input(hg_dataset, tmp_path, capsys):
    model = save_frame_world_model(tiny_frame_world_model(), tmp_path / "wm.pt")
    main(["--checkpoint", str(model), "--data", str(hg_dataset), "--episodes", "2",
          "--frames", "12", "--tau", "0", "4"])  # fmt: skip
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ")]
    rows = [[float(v) for v in line.strip(" |").split(" | ")] for line in lines[1:]]
    assert [row[0] for row in rows] == [0, 4]
    (_, recon_psnr, noop_share, all_share), sticky = rows
    assert 0 < recon_psnr < 100 and 0 <= noop_share <= 1 and 0 <= all_share <= 1
    assert sticky[3] >= all_share  # stickier codes change less
    with pytest.raises(SystemExit) as e:
        main(["--checkpoint", str(tmp_path / "missing.pt"), "--data", str(hg_dataset)])
    assert e.value.code == 2
    assert "missing.pt" in capsys.readouterr().err


def test_it_refuses_a_negative_tau(tmp_path: Path, capsys):
    with pytest.raises(SystemExit):
        main(["--checkpoint", "x.pt", "--data", str(tmp_path), "--tau", "-1"])
    assert "--tau" in capsys.readouterr().err


def test_it_reads_a_bare_tokenizer_such_as_a_merged_one(hg_dataset, tmp_path, capsys):
    from tests.test_merge_codebook import _tokenizer_blob
    from worldmodel.checkpoint import save_checkpoint

    tokenizer = tmp_path / "vqvae.pt"
    save_checkpoint(tokenizer, _tokenizer_blob())
    merged = tmp_path / "merged.pt"
    script_module("tools/merge_codebook.py").main(
        ["--checkpoint", str(tokenizer), "--codes", "4", "--out", str(merged)]
    )
    shares = []
    for path in (tokenizer, merged):
        main(["--checkpoint", str(path), "--data", str(hg_dataset), "--episodes", "2",
              "--frames", "12", "--tau", "0"])  # fmt: skip
        row = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| 0 ")]
        shares.append(float(row[0].strip(" |").split(" | ")[3]))
    assert shares[1] >= shares[0]  # 4 merged codes change no more often than the codes they merge
