"""Every run records how it was made and re-runs exactly: from the CLI and from the app."""

from __future__ import annotations

import hashlib
import json
import re
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from plmcore.cli import build_parser, main
from plmcore.config import DataSpec, TrainConfig, choices, default, spec
from plmcore.runs import RunDir, list_runs

APP = str(Path(__file__).resolve().parents[1] / "app.py")


def grouped_windows(path: Path, n: int = 72) -> Path:
    """Windows of 24 proteins (3 each) with UniProt-style ids; label 1 when a P follows the centre Y."""
    rng = np.random.default_rng(1)
    lines = []
    for i in range(n):
        seq = list(rng.choice(list("ACDEFGHIKLMNQRSTVW"), 15))
        seq[7] = "Y"
        label = i % 2
        if label:
            seq[8] = "P"
        lines.append(f">sp|P{10000 + i // 3}|PROT_HUMAN%{i}%{i + 7} LABEL={label}\n{''.join(seq)}\n")
    path.write_text("".join(lines))
    return path


def losses(run: RunDir) -> list[float]:
    return [r["train_loss"] for r in run.read_metrics() if r.get("kind") == "train"]


def test_cli_run_records_its_making_and_reruns_identically(tmp_path):
    data = grouped_windows(tmp_path / "windows.fasta")
    code = main(["train", "--train", str(data), "--model", "random:tiny-esm", "--epochs", "2", "--no-baselines",
                 "--split-method", "protein", "--val-fraction", "0.2", "--logging-steps", "1",
                 "--run-dir", str(tmp_path / "a")])
    assert code == 0
    a = RunDir(tmp_path / "a")
    cfg = json.loads(a.config_path.read_text())
    assert cfg["data"]["split_method"] == "protein" and cfg["data"]["val_fraction"] == 0.2
    assert cfg["data"]["split_file"] == "split.csv"
    prov = cfg["provenance"]
    assert prov["data"]["files"][0]["sha256"] == hashlib.sha256(data.read_bytes()).hexdigest()
    assert prov["model"]["kind"] == "random weights" and prov["threads"] >= 1
    assert {"torch", "transformers", "peft", "plmcore"} <= set(prov["software"])
    assert prov["data"]["split"]["split_method"] == "protein"
    code = main(["train", "--config", str(a.config_path), "--run-dir", str(tmp_path / "b")])
    assert code == 0
    b = RunDir(tmp_path / "b")
    assert losses(a) and losses(a) == losses(b)  # bit for bit
    assert (a.split_path.read_bytes() == b.split_path.read_bytes())
    # a flag that changes the split makes it again from the files instead of reusing split.csv
    cfg_c = TrainConfig.load(b.config_path)
    assert cfg_c.data.split_file == "split.csv"


@pytest.mark.slow
def test_app_runs_name_their_split_rerun_identically_and_two_app_runs_agree(tmp_path, monkeypatch):
    monkeypatch.setenv("PLMCORE_WORKSPACE", str(tmp_path / "ws"))
    data = grouped_windows(tmp_path / "windows.fasta")
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    at.switch_page("pages/data.py").run()
    at.radio(key="data_how").set_value("Upload a file").run()
    at.text_input(key="data_name").set_value("grouped")
    at.file_uploader(key="data_upload").upload(data.name, data.read_bytes(), "text/plain")
    at.run()
    at.button(key="data_save").click().run()
    at.radio(key="data_split_method").set_value("protein").run()
    at.button(key="data_split_save").click().run()
    assert not at.exception
    runs = []
    for _ in range(2):
        at.switch_page("pages/train.py").run()
        tiny = next(o for o in at.selectbox(key="train_model").options if o.startswith("Tiny ESM"))
        at.selectbox(key="train_model").set_value(tiny).run()
        at.number_input(key="train_epochs").set_value(2).run()
        at.toggle(key="train_baselines").set_value(False).run()
        at.button(key="train_start").click().run()
        assert not at.exception and not at.error, [e.value for e in at.error]
        run = list_runs(tmp_path / "ws" / "runs")[0]
        deadline = time.time() + 120
        while run.status().get("state") not in ("finished", "failed") and time.time() < deadline:
            time.sleep(0.5)
        assert run.status()["state"] == "finished", run.log_tail()
        runs.append(run)
    first, second = runs
    assert first != second and losses(first) == losses(second)
    cfg = json.loads(first.config_path.read_text())
    assert cfg["data"]["dataset"] == "grouped" and cfg["data"]["split_method"] == "protein"
    assert cfg["provenance"]["created_by"] == "app"
    assert cfg["provenance"]["data"]["files"][0]["uploaded_as"] == "windows.fasta"
    assert main(["train", "--config", str(first.config_path), "--run-dir", str(tmp_path / "again")]) == 0
    assert losses(RunDir(tmp_path / "again")) == losses(first)
    # the Runs page says where the run came from and gives the command that re-runs it
    at.switch_page("pages/runs.py").run()
    assert any(f"--config {second.config_path}" in c.value for c in at.code)  # the newest run is shown
    shown = pd.concat([d.value for d in at.dataframe if "value" in d.value.columns]).to_string()
    assert "windows.fasta" in shown and "protein" in shown and "SHA-256" in shown


def _subcommands():
    parser = build_parser()
    action = next(a for a in parser._actions if a.dest == "command")
    return sorted(action.choices)


@pytest.mark.parametrize("command", _subcommands())
def test_every_subcommand_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"])
    assert exit_.value.code == 0
    assert "usage: python -m plmcore " + command in capsys.readouterr().out


def test_help_shows_the_declared_choices_and_defaults(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = re.sub(r"\s+", " ", capsys.readouterr().out)
    for cls, name in ((TrainConfig, "pooling"), (TrainConfig, "schedule"), (TrainConfig, "early_stopping_metric"),
                      (DataSpec, "split_method"), (TrainConfig, "threshold_objective")):
        s = spec(cls, name)
        flag = "--" + name.replace("_", "-")
        assert f"{flag} {{{','.join(choices(cls, name))}}}" in text, name
        assert f"(default: {s['default']})" in text
    assert f"(default: {default(TrainConfig, 'epochs')})" in text
    assert "--baselines, --no-baselines" in text


def test_pages_take_choices_from_the_declarations(tmp_path, monkeypatch):
    monkeypatch.setenv("PLMCORE_WORKSPACE", str(tmp_path / "ws"))
    data = grouped_windows(tmp_path / "windows.fasta", 30)
    from plmcore import data as D
    from plmcore.datasets import DatasetStore

    DatasetStore(tmp_path / "ws" / "datasets").save("d", D.validate(D.read_table(data)).table)
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    at.switch_page("pages/train.py").run()
    for name in ("pooling", "early_stopping_metric", "threshold_objective", "class_weights"):
        assert tuple(at.selectbox(key=f"train_{name}").options) == tuple(
            spec(TrainConfig, name)["choices"][v] for v in choices(TrainConfig, name)), name
    assert at.number_input(key="train_epochs").value == default(TrainConfig, "epochs")
    assert at.number_input(key="train_lora_r").value == default(TrainConfig, "lora_r")
