"""The evaluation report's summary names each game variable and, for a scenario with a gun, the
combat rules (the figures issue 36 asks for), rather than one unnamed number."""

from __future__ import annotations

from worldmodel.evaluation.report_sections import summary


def _metrics(variables: list[str], combat: dict | None) -> dict:
    v = len(variables)
    state = {
        "variables": variables,
        "mae": [0.1 * (i + 1) for i in range(v)],
        "keep_last_mae": [1.0 + i for i in range(v)],
        "precision": 1.0,
        "recall": 0.5,
        "deaths": 4,
    }
    if combat is not None:
        state["combat"] = combat
    return {
        "arch": "frame",
        "config": {"temperature": 1.0, "one_step_context": 7, "copy_unchanged": False},
        "one_step": {"ctx7/T1": {"dream": 30.0, "copy": 28.0, "recon": 33.0}},
        "open_loop": {
            "context": 4,
            "psnr_per_frame": [25.0, 24.0],
            "psnr_mean": 24.5,
            "frozen_psnr_mean": 22.0,
            "ssim_mean": 0.5,
            "frozen_ssim_mean": 0.4,
            "state_mae": [0.5 * (i + 1) for i in range(v)],
            "state_keep_last_mae": [2.0] * v,
            "state_exact_at_end": [0.9] * v,
            "state_within_one_at_end": [1.0] * v,
        },
        "action_following": {"idm_accuracy_dream": 0.5, "idm_accuracy_real": 0.6, "chance": 0.2},
        "state": state,
    }


def test_one_health_row_for_a_scenario_with_health_alone():
    text = summary(_metrics(["HEALTH"], None))
    assert "| HEALTH MAE, teacher-forced | 0.1 | keep last 1.00 |" in text
    assert "| HEALTH MAE, open loop 2 steps | 0.5 | keep last 2.00 |" in text
    assert "kills" not in text and "exact (" not in text


def test_every_variable_and_the_combat_rules_are_named():
    combat = {
        "exact": {"AMMO2": 0.99, "HEALTH": 0.95, "KILLCOUNT": 0.98},
        "kills": {"precision": 1.0, "recall": 0.55, "real": 49, "predicted": 27},
        "ammo_empty_steps": 206,
        "ammo_stays_empty": 1.0,
    }
    text = summary(_metrics(["AMMO2", "HEALTH", "KILLCOUNT"], combat))
    assert "| AMMO2 MAE, teacher-forced | 0.1 | keep last 1.00 |" in text
    assert "| HEALTH MAE, teacher-forced | 0.2 | keep last 2.00 |" in text  # not AMMO2's number
    assert "| KILLCOUNT MAE, open loop 2 steps | 1.5 | keep last 2.00 |" in text
    assert "after 2 steps, exact (AMMO2, HEALTH, KILLCOUNT) | 0.90, 0.90, 0.90" in text
    assert "| kills precision / recall (teacher-forced) | 1.000 / 0.550 | 49 real" in text
    assert "AMMO2 0.990, HEALTH 0.950, KILLCOUNT 0.980" in text
    assert "| no ammo stays no ammo (teacher-forced) | 1 | 206 steps with none |" in text
