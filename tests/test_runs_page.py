"""The Runs page under AppTest: runs are renamed and tagged, Compare shows the settings that differ, and
every headline metric names the threshold it was measured at."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import plain
from streamlit.testing.v1 import AppTest

from plmcore import figures as F
from plmcore.compare import settings_diff
from plmcore.config import DataSpec, TrainConfig
from plmcore.runs import RunDir

APP = str(Path(__file__).resolve().parents[1] / "app.py")


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory, request) -> tuple[Path, RunDir, RunDir]:
    """A finished tiny run, and a copy of it that says it used centre pooling: (workspace, mean, centre)."""
    shared = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "dephos_Y"
    if not shared.exists():
        pytest.skip(f"the shared test data {shared} is absent (it sits next to the project as shared/data)")
    from plmcore.train import train

    ws = tmp_path_factory.mktemp("runs_ws")
    mp = pytest.MonkeyPatch()
    request.addfinalizer(mp.undo)
    mp.setenv("PLMCORE_WORKSPACE", str(ws))
    config = TrainConfig(model="random:tiny-esm", epochs=1, learning_rate=1e-3, baselines=False,
                         data=DataSpec(train=(str(shared / "train_sequences.fasta"),),
                                       test=str(shared / "test_sequences.fasta"), dataset="dephos"))
    mean = train(config)
    centre = RunDir(mean.path.with_name(mean.name + "-centre"))
    shutil.copytree(mean.path, centre.path)
    raw = json.loads(centre.config_path.read_text())
    raw["pooling"] = "center"
    centre.config_path.write_text(json.dumps(raw))
    return ws, mean, centre


@pytest.fixture
def workspace(two_runs, monkeypatch):
    monkeypatch.setenv("PLMCORE_WORKSPACE", str(two_runs[0]))
    for run in two_runs[1:]:
        run.about_path.unlink(missing_ok=True)
    return two_runs


def runs_page() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    at.switch_page("pages/runs.py").run()
    assert not at.exception, at.exception
    return at


def texts(at: AppTest) -> str:
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption] + [m.label for m in at.metric]
    return plain(" ".join(parts))


def test_a_renamed_and_tagged_run_is_listed_by_its_name(workspace):
    _, mean, _ = workspace
    at = runs_page()
    at.selectbox(key="runs_selected").set_value(mean.name).run()
    at.text_input(key=f"runs_name_{mean.name}").set_value("mean pooling, first try")
    at.multiselect(key=f"runs_tags_{mean.name}").set_value(["pooling", "demo"])
    at.button(key=f"runs_about_save_{mean.name}").click().run()
    assert not at.exception, at.exception
    assert mean.about()["name"] == "mean pooling, first try" and mean.about()["tags"] == ["pooling", "demo"]
    table = at.dataframe[0].value
    assert any(n.endswith("mean pooling, first try") for n in table["name"])
    assert any(plain(h.value) == "mean pooling, first try" for h in at.subheader)
    assert "mean pooling, first try" in at.selectbox(key="runs_selected").format_func(mean.name)


def test_every_headline_metric_names_its_threshold_and_agrees(workspace):
    _, mean, _ = workspace
    report = mean.report()
    view, words = F.at_decision(report)
    t = report["at_threshold"]["threshold"]
    assert words.startswith(f"at threshold {t:.2f}, chosen on validation")
    at = runs_page()
    at.selectbox(key="runs_selected").set_value(mean.name).run()
    shown = texts(at)
    assert f"Test MCC at threshold {t:.2f}" in shown and f"metrics at threshold {t:.2f}" in shown
    mcc = f"{view['metrics']['mcc']:.3f}"
    assert any(m.value == mcc for m in at.metric)
    # the runs table says the same number at the same threshold
    row = at.dataframe[0].value.set_index("name").loc[f"⚠ {mean.name}"]
    assert f"{row['test MCC']:.3f}" == mcc and f"{row['threshold']:.2f}" == f"{t:.2f}"
    # the metrics table leads with the chosen threshold, named in its heading
    table = next(d.value for d in at.dataframe if "MCC" in d.value.index)
    assert table.columns[0].startswith(f"at {t:.2f}, chosen on validation")
    assert table.loc["MCC"].iloc[0].startswith(mcc)
    # and Compare shows the same value, with its threshold in the first row
    at.radio(key="runs_mode").set_value("Compare runs").run()
    at.multiselect(key="runs_compare").set_value([mean.name]).run()
    compared = next(d.value for d in at.dataframe if "MCC" in d.value.index)
    assert compared.loc["decision threshold"].iloc[0].startswith(f"{t:.2f}, chosen on validation")
    assert compared.loc["MCC"].iloc[0].startswith(mcc)


def test_compare_lists_only_the_settings_that_differ_in_words(workspace):
    _, mean, centre = workspace
    at = runs_page()
    at.radio(key="runs_mode").set_value("Compare runs").run()
    at.multiselect(key="runs_compare").set_value([mean.name, centre.name]).run()
    assert not at.exception, at.exception
    diff = next(d.value for d in at.dataframe if d.value.index.name == "setting")
    assert list(diff.index) == ["Pooling"]
    assert set(diff.loc["Pooling"]) == {"mean over residues", "centre residue (the site)"}
    # metrics come before the settings
    order = [m.value for m in at.markdown if m.value.startswith("**")]
    assert order.index("**Test metrics**") < order.index("**Settings that differ**")


def test_settings_diff_in_words():
    a = TrainConfig(model="random:tiny-esm", data=DataSpec(train=("/x/a.fasta",)))
    b = a.replace(pooling="cls", lora_r=16, baselines=False)
    rows = {r["setting"]: r for r in settings_diff({"A": a, "B": b})}
    assert set(rows) == {"Pooling", "LoRA rank", "Baselines"}
    assert (rows["Pooling"]["A"], rows["Pooling"]["B"]) == ("mean over residues", "first token (CLS)")
    assert (rows["Baselines"]["A"], rows["Baselines"]["B"]) == ("yes", "no")
    assert settings_diff({"A": a, "A again": a}) == []
    assert settings_diff({"A": a}) == []


def test_a_report_without_a_chosen_threshold_says_0_50():
    report = {"classes": ["0", "1"], "metrics": {"mcc": 0.1}}
    view, words = F.at_decision(report)
    assert words == "at threshold 0.50" and view["threshold"] == 0.5
