"""The evaluation report's game-state rows and section: each variable's error beside keeping
its last value, deaths, and the combat rules of a scenario with a gun."""

from __future__ import annotations

from typing import Any

from worldmodel.evaluation.report_format import grid


def variable_rows(st: dict[str, Any], ol: dict[str, Any]) -> list[list[Any]]:
    """Summary rows of each game variable's error (teacher-forced, then open loop), beside
    keeping its last real value, and the combat rules where the scenario has them."""
    rows: list[list[Any]] = []
    names = st.get("variables") or ["HEALTH"]
    for v, name in enumerate(names):
        rows.append(
            [f"{name} MAE, teacher-forced", st["mae"][v], f"keep last {st['keep_last_mae'][v]:.2f}"]
        )
    if ol.get("state_mae"):
        n = len(ol["psnr_per_frame"])
        for v, name in enumerate(names):
            kept = ol["state_keep_last_mae"][v]
            rows.append(
                [f"{name} MAE, open loop {n} steps", ol["state_mae"][v], f"keep last {kept:.2f}"]
            )
        if len(names) > 1 and ol.get("state_exact_at_end"):
            exact = ", ".join(f"{x:.2f}" for x in ol["state_exact_at_end"])
            within = ", ".join(f"{x:.2f}" for x in ol["state_within_one_at_end"])
            rows.append(
                [f"after {n} steps, exact ({', '.join(names)})", exact, f"within 1: {within}"]
            )
    combat = st.get("combat")
    if combat:
        exact = ", ".join(f"{k} {v:.3f}" for k, v in combat["exact"].items())
        rows.append(["exact per step, teacher-forced", exact, ""])
        if combat.get("kills"):
            k = combat["kills"]
            rows.append(
                [
                    "kills precision / recall (teacher-forced)",
                    f"{k['precision']:.3f} / {k['recall']:.3f}",
                    f"{k['real']} real kill steps, {k['predicted']} predicted",
                ]
            )
        if combat.get("ammo_empty_steps"):
            rows.append(
                [
                    "no ammo stays no ammo (teacher-forced)",
                    combat["ammo_stays_empty"],
                    f"{combat['ammo_empty_steps']} steps with none",
                ]
            )
    return rows


def state_section(st: dict[str, Any]) -> str:
    cols = [
        "steps",
        "episodes",
        "mae",
        "keep_last_mae",
        "deaths",
        "predicted",
        "precision",
        "recall",
        "dead_prob_on_deaths",
        "sampled_deaths_per_1000_lived_steps",
    ]
    rows = [["all", *[st[c] for c in cols]]]
    rows += [[b, *[v[c] for c in cols]] for b, v in st.get("per_behaviour", {}).items()]
    return (
        f"Teacher-forced over every step of the split's episodes (variables {st['variables']}; "
        f"episodes shorter than twice the window are left out). A death is predicted when "
        f"P(HEALTH = 0) > {st['threshold']}, the dream env's threshold; a dream samples HEALTH, "
        "so the last column is how many deaths per 1,000 steps it would dream where the player "
        "lived.\n\n" + grid(["behaviour", *cols], rows)
    )
