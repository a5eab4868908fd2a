"""A workflow goes on the way it began: the choices recorded at its start by earlier versions
are read back as those versions meant them, so that its recorded DBOS steps line up."""

from __future__ import annotations

from sogni_intelligence.runtime.workflow_steps import _how_it_runs


def test_this_version_writes_waves_in_the_workflow() -> None:
    how = _how_it_runs({"served": ["image"], "waves": "in-workflow"})
    assert how.here == ["image"] and how.waves_in_workflow


def test_a_recorded_list_of_queues_keeps_a_step_per_wave() -> None:
    how = _how_it_runs(["image", "video"])
    assert how.here == ["image", "video"] and not how.waves_in_workflow


def test_a_recorded_true_runs_every_step_as_a_job() -> None:
    how = _how_it_runs(True)
    assert how.here == [] and not how.waves_in_workflow
