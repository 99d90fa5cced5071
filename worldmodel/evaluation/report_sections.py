"""The Markdown of the evaluation report, built from its metrics: every figure in a row or a
column beside its baseline."""

from __future__ import annotations

from typing import Any

from worldmodel.evaluation.report_format import fmt, grid, pct, table
from worldmodel.evaluation.report_state import state_section, variable_rows
from worldmodel.sampling.settings import sampling_label


def headline(m: dict[str, Any]) -> str:
    """The one-step setting a summary reports: the dream's own sampling, the pixels of unchanged
    codes kept (``+copy``) when it keeps them, as the open-loop rows and play dream."""
    c = m["config"]
    label = sampling_label(
        c["temperature"], c.get("top_p"), c.get("passes", 1), c.get("keep_likely")
    )
    copy = "+copy" if c.get("copy_unchanged") and m.get("arch") == "frame" else ""
    return f"ctx{c['one_step_context']}/{label}{copy}"


def summary(m: dict[str, Any]) -> str:
    rows: list[list[Any]] = []
    head = headline(m)
    one = m.get("one_step", {}).get(head)
    if one:
        rows.append(["one-step PSNR (dB), " + head, one["dream"], f"copy {one['copy']:.2f}"])
        rows.append(["", "", f"reconstruction {one['recon']:.2f}"])
        if "noop" in one:
            noop = one["noop"]
            rows.append(["one-step PSNR on noop steps", noop["dream"], f"copy {noop['copy']:.2f}"])
    for key in ("open_loop", "open_loop_full"):
        ol = m.get(key)
        if ol:
            label = (
                f"open-loop PSNR, {ol['context']} real frames, mean of {len(ol['psnr_per_frame'])}"
            )
            rows.append([label, ol["psnr_mean"], f"frozen {ol['frozen_psnr_mean']:.2f}"])
    ol = m["open_loop"]
    rows.append(["open-loop SSIM", ol["ssim_mean"], f"frozen {ol['frozen_ssim_mean']:.3f}"])
    if "fvd" in m:
        f = m["fvd"]
        rows.append(
            [
                f"FVD dream vs real ({f['clips']} clips)",
                f["dream_vs_real"],
                f"recon {f['reconstruction_vs_real']:.0f}, real {f['real_vs_real']:.0f}",
            ]
        )
        rows.append(
            ["FVD dream / reconstruction", f["dream_over_recon"], "1 = the tokenizer's floor"]
        )
    af = m["action_following"]
    rows.append(
        [
            "IDM accuracy on dreamed transitions",
            af["idm_accuracy_dream"],
            f"real {af['idm_accuracy_real']:.3f}, chance {af['chance']:.3f}",
        ]
    )
    if "state" in m:
        st = m["state"]
        rows += variable_rows(st, ol)
        rows.append(
            [
                "termination precision / recall (teacher-forced)",
                f"{st['precision']:.3f} / {st['recall']:.3f}",
                f"{st['deaths']} real deaths",
            ]
        )
    if "reward_termination" in m:
        rt = m["reward_termination"]
        rows.append(["bits/dim (teacher-forced)", rt["bits_per_dim"], "9 = uniform"])
        rows.append(
            [
                "termination precision / recall",
                f"{rt['done_precision']:.3f} / {rt['done_recall']:.3f}",
                f"{rt['done_events']} endings",
            ]
        )
    rg = m.get("real_game", {})
    fo = rg.get("following", {})
    for turn in ("turn_left", "turn_right", "move_left", "move_right"):
        if turn in fo:
            t = fo[turn]
            rows.append(
                [
                    f"{turn}: moves the picture the right way / shift ratio",
                    f"{pct(t['dream_right_way'])} / {t['shift_ratio']:.2f}",
                    f"real {pct(t['real_right_way'])} / 1",
                ]
            )
    if "forward" in fo:
        f = fo["forward"]
        rows.append(
            [
                "forward zooms in more than noop",
                pct(f["dream_zooms_more_than_noop"]),
                f"real {pct(f['real_zooms_more_than_noop'])}",
            ]
        )
    if "noop" in fo:
        rows.append(["noop change per step, dream / real", fo["noop"]["change_ratio"], "1"])
    if "standing_still" in rg:
        s = rg["standing_still"]
        rows.append(
            [
                "noop until death: dream dies within ±15% of real",
                pct(s["within_tolerance"]),
                f"{s['ran_past_cap']} of {s['starts']} ran 3x past",
            ]
        )
    if "random_length" in rg:
        r = rg["random_length"]
        rows.append(
            [
                "random play: episode length dream / real",
                r["ratio"],
                f"{r['dream_mean']:.0f} / {r['real_mean']:.0f} steps",
            ]
        )
    for name, lp in rg.get("long_play", {}).items():
        if isinstance(lp, dict):
            rows.append(
                [
                    f"long play ({name}): collapsed frames",
                    pct(lp["uniform"] + lp["one_texture"]),
                    f"real {pct(lp['real_uniform'] + lp['real_one_texture'])}",
                ]
            )
    return grid(["metric", "dream", "baseline"], rows)


def one_step_section(m: dict[str, Any]) -> str:
    suite = m["one_step"]
    rows = [
        [
            k,
            v["samples"],
            v["dream"],
            v["copy"],
            v["recon"],
            v.get("noop", {}).get("dream"),
            v.get("noop", {}).get("copy"),
            v.get("noop", {}).get("n"),
        ]
        for k, v in suite.items()
    ]
    text = [
        "Teacher-forced: real context frames and the real action, one dreamed frame, mean "
        "PSNR (dB, each frame capped at 60) against the real next frame; `+copy` keeps the "
        "pixels whose codes did not change.",
        grid(
            [
                "setting",
                "samples",
                "dream",
                "copy last",
                "recon",
                "noop dream",
                "noop copy",
                "noop n",
            ],
            rows,
        ),
    ]
    for group in ("per_action", "per_behaviour"):
        contexts = sorted({k.split("/")[0] for k in suite})
        for ctx in contexts:
            keys = [k for k in suite if k.startswith(ctx + "/")]
            first = suite[keys[0]][group]
            header = ["group", "n", "copy last", "recon", *[k.split("/")[1] for k in keys]]
            body = [
                [
                    g,
                    first[g]["n"],
                    first[g]["copy"],
                    first[g]["recon"],
                    *[suite[k][group].get(g, {}).get("dream") for k in keys],
                ]
                for g in first
            ]
            text.append(
                f"**{group.replace('_', ' ')}, {ctx[3:]} real frames**\n\n" + grid(header, body)
            )
    return "\n\n".join(text)


def open_loop_section(m: dict[str, Any]) -> str:
    runs = [m[k] for k in ("open_loop", "open_loop_full") if k in m]
    header, cols = ["frame"], []
    for r in runs:
        c = r["context"]
        header += [f"PSNR ctx {c}", f"frozen ctx {c}", f"SSIM ctx {c}", f"frozen SSIM ctx {c}"]
        cols += [
            r["psnr_per_frame"],
            r["frozen_psnr_per_frame"],
            r["ssim_per_frame"],
            r["frozen_ssim_per_frame"],
        ]
        if r.get("state_mae_per_step"):
            names = m.get("state", {}).get("variables") or ["HEALTH"]
            what = f"{names[0]} MAE" if len(names) == 1 else "state MAE (mean of variables)"
            header += [f"{what} ctx {c}", f"keep last ctx {c}"]
            cols += [r["state_mae_per_step"], r["state_keep_last_mae_per_step"]]
    rows = [[i + 1, *[col[i] for col in cols]] for i in range(len(cols[0]))]
    text = [
        f"{runs[0]['clips']} clips, real actions, temperature {runs[0]['temperature']}; "
        "frozen = the last real context frame shown for every step.",
        "![PSNR vs horizon](psnr_horizon.png)",
        grid(header, rows),
    ]
    for r in runs:
        groups = r["per_behaviour"]
        keys = [k for k in next(iter(groups.values())) if k != "n"]
        body = [[g, v["n"], *[v[k] for k in keys]] for g, v in groups.items()]
        text.append(
            f"**per behaviour, {r['context']} real frames**\n\n"
            + grid(["behaviour", "clips", *keys], body)
        )
    return "\n\n".join(text)


def real_game_section(rg: dict[str, Any]) -> str:
    text = []
    if "starts" in rg:
        s = rg["starts"]
        text.append(
            f"From real starts (a seeded reset, then {s['prefix_steps_range'][0]}-"
            f"{s['prefix_steps_range'][1]} steps of the held-out human-like walker); the "
            f"dream starts from their last {s['context_frames']} frames."
        )
    if "following" in rg:
        fo = rg["following"]
        lines = [
            f"- {name}: " + ", ".join(f"{k} {fmt(v)}" for k, v in d.items())
            for name, d in fo.items()
            if isinstance(d, dict)
        ]
        text.append(
            f"**Action following**: each action held {fo['hold']} steps from {fo['starts']} "
            "starts, in the dream and the game (shift in pixels, positive = the picture moved "
            "right; zoom as a log scale; change = mean absolute pixel change per step).\n\n"
            + "\n".join(lines)
        )
    for key, title in (("standing_still", "Standing still"), ("random_length", "Random play")):
        if key in rg:
            text.append(f"**{title}**\n\n" + table(rg[key]))
    for name, lp in rg.get("long_play", {}).items():
        if not isinstance(lp, dict):
            continue
        rows = [
            [
                i * 100,
                *lp["colour_mean_per_100"][i],
                *lp["colour_std_per_100"][i],
                pct(lp["outside_real_range_per_100"][i]),
                pct(lp["collapsed_per_100"][i]),
            ]
            for i in range(len(lp["colour_mean_per_100"]))
        ]
        lo, hi = lp["real_colour_mean_range"]
        text.append(
            f"**Long play, {name} control** ({rg['long_play']['steps']} steps, "
            f"{rg['long_play']['dreams_per_control']} dreams; real frames' channel means span "
            f"{fmt(lo)} to {fmt(hi)}). Uniform {pct(lp['uniform'])} (real "
            f"{pct(lp['real_uniform'])}), one texture {pct(lp['one_texture'])} (real "
            f"{pct(lp['real_one_texture'])}), outside the real range "
            f"{pct(lp['outside_real_range'])}, non-finite variables {lp['nonfinite_variables']}, "
            f"black frames {lp['black_frames']}, dreamed deaths at {lp['dream_deaths']}, real "
            f"episode lengths {lp['real_lengths']}.\n\n"
            + grid(
                ["from step", "mean R", "G", "B", "std R", "G", "B", "outside", "collapsed"], rows
            )
            + f"\n\n![{name}]({lp['contact_sheet']})"
        )
    return "\n\n".join(text)


def sections(m: dict[str, Any]) -> list[tuple[str, str]]:
    c = m["config"]
    behaviours = ", ".join(f"{k} {v}" for k, v in m["behaviours"].items())
    out = [
        ("Summary", summary(m)),
        (
            "Setup",
            f"env `{m['env']}`, {m['arch']} prior, data `{m['data']}` split `{m['split']}` "
            f"({m['episodes']} episodes: {behaviours}); "
            f"temperature {c['temperature']}, top-p {c.get('top_p') or 'off'}, "
            f"{c.get('passes', 1)} pass(es) per frame (game state: "
            f"{c.get('state_temperature') or 'the same'}), "
            f"copy_unchanged {c['copy_unchanged']}, keep_likely {c.get('keep_likely') or 'off'}, "
            f"seed {c['seed']}. "
            f"FVD sets hold {m.get('fvd', {}).get('clips', 0)} clips (FVD is biased "
            f"upward for small sets: compare only equal sizes). Took {m['seconds']:.0f} s.",
        ),
    ]
    if "one_step" in m:
        out.append(("One step", one_step_section(m)))
    out.append(("Open loop", open_loop_section(m)))
    if "fvd" in m:
        out.append(("FVD", table(m["fvd"])))
    out.append(("Reconstruction", table(m["reconstruction"])))
    out.append(
        (
            "Real vs dream",
            "Top: real (context, then what happened). Bottom: the same context, then the dream "
            "under the same actions.\n\n![real vs dream](real_vs_dream.gif)\n\nTokenizer "
            "reconstructions (top real, bottom reconstructed):\n\n![reconstruction]"
            "(reconstruction.gif)",
        )
    )
    out.append(("Action following (inverse dynamics)", table(m["action_following"])))
    if "state" in m:
        out.append(("Game state", state_section(m["state"])))
    if "reward_termination" in m:
        out.append(("Reward and termination", table(m["reward_termination"])))
    if m.get("real_game"):
        out.append(("Against the real game", real_game_section(m["real_game"])))
    return out
