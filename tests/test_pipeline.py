import json

import nbformat
import pytest
from nbfactory import PARAMS, make_notebook
from nbformat.v4 import new_code_cell, new_notebook

from lipkit import pipeline
from lipkit.cli import main
from lipkit.pipeline import PipelineError, reproduce

_notebook = make_notebook


WRITE = "from pathlib import Path\nPath(FIGURES_DIR).mkdir(parents=True, exist_ok=True)\n" \
        "Path(FIGURES_DIR, '{name}.txt').write_text(str(SIZE))"

TABLE = {
    "t": {"description": "test", "needs_data_root": False, "strict": True, "common": {"SIZE": 3},
          "notebooks": {"01": {}, "02": {}, "03": {"SIZE": 4}}},
    "real": {"description": "needs data", "needs_data_root": True, "strict": False, "common": {}, "notebooks": {}},
}


@pytest.fixture()
def dirs(tmp_path):
    nbs = tmp_path / "notebooks"
    nbs.mkdir()
    return nbs, tmp_path / "runs", tmp_path / "figures"


def _run(dirs, **kw):
    nbs, runs, figs = dirs
    return reproduce(kw.pop("profile", "t"), notebooks_dir=nbs, runs_dir=runs, figures_dir=figs,
                     profiles=kw.pop("profiles", TABLE), log=lambda *_: None, **kw)


def test_unknown_parameter_is_an_error_before_anything_runs(dirs):
    nbs, runs, _ = dirs
    _notebook(nbs / "01_a.ipynb", WRITE.format(name="a"))
    _notebook(nbs / "02_b.ipynb", "pass", params='FIGURES_DIR = ""\nDATA_ROOT = ""\n')  # lacks SIZE
    with pytest.raises(PipelineError, match=r"02_b.ipynb: unknown parameter\(s\) SIZE"):
        _run(dirs)
    assert not (runs / "01_a.ipynb").exists()


def test_profile_checks_without_a_kernel(dirs):
    nbs, _, _ = dirs
    _notebook(nbs / "01_a.ipynb", "pass")
    with pytest.raises(PipelineError, match="--data-root"):
        _run(dirs, profile="real")
    with pytest.raises(PipelineError, match="unknown profile"):
        _run(dirs, profile="nope")
    with pytest.raises(PipelineError, match="--only 07"):
        _run(dirs, only=["07"])
    assert [p.name for p in pipeline.discover(nbs, "1")] == ["01_a.ipynb"]  # "1" and "01" both name 01
    _notebook(nbs / "04_d.ipynb", "pass")
    with pytest.raises(PipelineError, match=r"no entry for 04_d.ipynb"):
        _run(dirs)
    with pytest.raises(PipelineError, match="no cell tagged 'parameters'"):
        nb = new_notebook(cells=[new_code_cell("x = 1")])
        nbformat.write(nb, str(nbs / "02_e.ipynb"))
        _run(dirs, only=["02"])
    _notebook(nbs / "02_e.ipynb", "pass", params=PARAMS + "OTHER = 3  # a comment (with = inside)\n")
    with pytest.raises(PipelineError, match="cannot parse the parameter line 'OTHER = 3"):
        _run(dirs, only=["02"])


def test_real_profiles_are_complete():
    for name, spec in pipeline.PROFILES.items():
        assert spec["description"] and "01" in spec["notebooks"]
    assert pipeline.PROFILES["paper"]["needs_data_root"]
    text = pipeline.profile_table()
    assert all(f"| {n} |" in text for n in pipeline.PROFILES)
    assert main(["reproduce", "--profile", "paper"]) == 2


@pytest.mark.parametrize("profile", sorted(pipeline.PROFILES))
def test_every_profile_sets_only_parameters_the_real_notebooks_declare(profile, tmp_path):
    """What ``reproduce`` checks before running, on the committed notebooks: a parameter added to a
    profile but not to every notebook it reaches (e.g. SSL_ARCH for 02-05) fails here, not hours in."""
    from lipkit import paths

    spec = pipeline.PROFILES[profile]
    data_root = str(tmp_path) if spec["needs_data_root"] else None
    for notebook in pipeline.discover(paths.NOTEBOOKS_DIR):
        if notebook.name[:2] not in spec["notebooks"] and not spec.get("strict", True):
            continue
        params = pipeline.notebook_parameters(spec, profile, notebook, tmp_path / "figures", data_root, tmp_path)
        pipeline.check_parameters(notebook, params)


def test_failing_notebook_stops_the_run_and_resume_continues(dirs, monkeypatch, capsys):
    nbs, runs, figs = dirs
    _notebook(nbs / "01_a.ipynb", WRITE.format(name="a"))
    bad = _notebook(nbs / "02_b.ipynb", "x = 1", "# the cell that breaks\nraise ValueError('boom at size %d' % SIZE)")
    _notebook(nbs / "03_c.ipynb", WRITE.format(name="c"))
    monkeypatch.setattr(pipeline.paths, "NOTEBOOKS_DIR", nbs)
    monkeypatch.setattr(pipeline.paths, "RUNS_DIR", runs.parent / "allruns")
    monkeypatch.setattr(pipeline.paths, "FIGURES_DIR", figs)
    monkeypatch.setattr(pipeline, "PROFILES", {"t": TABLE["t"]})
    assert main(["reproduce", "--profile", "t"]) == 1
    out = capsys.readouterr().out
    assert "02_b.ipynb failed in cell" in out and "the cell that breaks" in out and "ValueError: boom at size 3" in out
    assert "| 01_a.ipynb | ok |" in out and "| 02_b.ipynb | failed |" in out and "| 03_c.ipynb | not run |" in out
    run_dir = runs.parent / "allruns" / "t"
    assert (run_dir / "01_a.ipynb").is_file() and (run_dir / "02_b.ipynb").is_file()
    assert not (run_dir / "03_c.ipynb").exists()
    assert (figs / "t" / "a.txt").read_text() == "3"  # common SIZE reached the notebook; figures/<profile>
    state = json.loads((run_dir / "pipeline.json").read_text())
    assert [r["status"] for r in state["results"]] == ["ok", "failed", "not run"]

    _notebook(bad, "x = 1")  # fix it, then continue where the run stopped
    summary = reproduce("t", resume=True, notebooks_dir=nbs, runs_dir=run_dir, figures_dir=figs / "t",
                        profiles=TABLE, log=lambda *_: None)
    assert [r.status for r in summary.results] == ["skipped (done)", "ok", "ok"]
    assert summary.ok and summary.failure is None
    assert (figs / "t" / "c.txt").read_text() == "4"  # per-notebook override wins over common
    table = summary.table()
    assert "| 03_c.ipynb | ok |" in table and "| total | ok |" in table



def test_param_overrides_reach_only_notebooks_that_declare_them(dirs):
    nbs, runs, figs = dirs
    _notebook(nbs / "01_a.ipynb", WRITE.format(name="a"))
    _notebook(nbs / "02_b.ipynb", "pass", params='FIGURES_DIR = ""\nDATA_ROOT = ""\n')
    table = {"t": {**TABLE["t"], "common": {}, "notebooks": {"01": {"SIZE": 3}, "02": {}}}}
    summary = _run(dirs, profiles=table, params={"SIZE": 7})
    assert summary.ok
    assert (figs / "a.txt").read_text() == "7"  # the override beat the profile's 3
    with pytest.raises(PipelineError, match="--param NOPE: no notebook of this run declares it"):
        _run(dirs, profiles=table, params={"NOPE": 1})


def test_parse_param():
    assert pipeline.parse_param("DEVICE=cuda") == ("DEVICE", "cuda")
    assert pipeline.parse_param("SEEDS=3") == ("SEEDS", 3)
    assert pipeline.parse_param("DATA_ROOT=") == ("DATA_ROOT", "")
    with pytest.raises(PipelineError, match="NAME=VALUE"):
        pipeline.parse_param("3x=1")


def test_a_hanging_cell_fails_the_run_at_the_profile_cell_timeout(dirs):
    nbs, runs, _ = dirs
    _notebook(nbs / "01_a.ipynb", "import time\ntime.sleep(60)")
    table = {"t": {**TABLE["t"], "cell_timeout": 3, "notebooks": {"01": {}}}}
    summary = _run(dirs, profiles=table)
    assert not summary.ok
    assert "01_a.ipynb failed" in summary.failure.error and "time.sleep(60)" in summary.failure.error
