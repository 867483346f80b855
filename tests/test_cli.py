"""The command line: help, one-line errors, and the whole path on the shared dephos data."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import h5py
import pandas as pd
import pytest

from plmcore.cli import main
from plmcore.runs import RunDir

ROOT = Path(__file__).resolve().parents[1]


def test_bad_input_is_one_line_and_nonzero(tmp_path, capsys):
    bad = tmp_path / "bad.fasta"
    bad.write_text(">s1 LABEL=1\nACDE1FG\n>s2 LABEL=0\nACDEFG\n")
    code = main(["train", "--train", str(bad), "--model", "random:tiny-esm", "--run-dir", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code == 2
    assert "Traceback" not in err
    assert err.startswith("error:") and "s1" in err and "'1'" in err
    code = main(["train", "--train", str(tmp_path / "missing.fasta"), "--run-dir", str(tmp_path / "r2")])
    assert code == 2
    assert "missing.fasta" in capsys.readouterr().err


def test_models_lists_presets(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "Rostlab/prot_t5_xl_uniref50" in out and "1,208,141,824" in out


@pytest.fixture(scope="module")
def dephos_run(tmp_path_factory, tiny_models):
    shared = ROOT.parent / "shared" / "data" / "dephos_Y"
    if not shared.is_dir():
        pytest.skip(f"../shared/data is absent: the CLI test needs {shared}")
    run_dir = tmp_path_factory.mktemp("cli") / "dephos"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run(
        [sys.executable, "-m", "plmcore", "train", "--train", str(shared / "train_sequences.fasta"),
         "--test", str(shared / "test_sequences.fasta"), "--model", str(tiny_models["esm"]),
         "--epochs", "2", "--lr", "1e-3", "--run-dir", str(run_dir)],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return RunDir(run_dir), proc, shared


def test_cli_train_writes_the_run_directory(dephos_run):
    run, proc, _ = dephos_run
    assert "ROC-AUC" in proc.stdout and "95%" in proc.stdout
    split = pd.read_csv(run.split_path)
    assert (split["split"] == "test").sum() == 50
    assert {"train", "val"} <= set(split["split"])
    for name in ("config.json", "metrics.jsonl", "status.json", "test_report.json", "best/head.safetensors",
                 "best/adapter/adapter_model.safetensors"):
        assert (run.path / name).exists(), name
    assert run.status()["state"] == "finished"


def test_cli_evaluate_prints_metrics_with_intervals(dephos_run, capsys):
    run, _, shared = dephos_run
    assert main(["evaluate", str(run.path), "--n-boot", "300"]) == 0
    out = capsys.readouterr().out
    for name in ("MCC", "Specificity", "Sensitivity", "Accuracy", "ROC-AUC", "PR-AUC"):
        assert name in out
    assert "n = 50" in out and "[" in out
    # scoring a file gives the same numbers as the saved test predictions
    assert main(["evaluate", str(run.path), "--data", str(shared / "test_sequences.fasta"), "--n-boot", "300"]) == 0
    out2 = capsys.readouterr().out
    assert out.splitlines()[3] == out2.splitlines()[3]  # the MCC row


def test_cli_predict_scans_a_whole_protein(dephos_run, tmp_path, capsys):
    run, _, shared = dephos_run
    windows = [line for line in (shared / "test_sequences.fasta").read_text().splitlines()
               if not line.startswith(">")][:3]
    protein = "".join(windows)
    out_csv = tmp_path / "sites.csv"
    assert main(["predict", str(run.path), "--sequence", protein, "--output", str(out_csv)]) == 0
    table = pd.read_csv(out_csv)
    assert list(table["position"]) == [i + 1 for i, aa in enumerate(protein) if aa == "Y"]
    assert (table["residue"] == "Y").all()
    assert table["window"].str.len().eq(33).all()
    assert table["probability"].between(0, 1).all()
    # a window scored directly gets the same probability as the scan's window at that site
    first = table.iloc[0]
    assert main(["predict", str(run.path), "--sequence", first["window"], "--output", str(tmp_path / "w.csv")]) == 0
    direct = pd.read_csv(tmp_path / "w.csv")
    assert direct["prob_1"].iloc[0] == pytest.approx(first["probability"], abs=1e-5)


def test_cli_embed_writes_hdf5(dephos_run, tmp_path):
    run, _, shared = dephos_run
    out = tmp_path / "emb.h5"
    assert main(["embed", "--run", str(run.path), "--input", str(shared / "test_sequences.fasta"),
                 "--output", str(out)]) == 0
    with h5py.File(out) as f:
        assert len(f.keys()) == 50
        assert next(iter(f.values())).shape == (32,)


def test_cli_runs_list_and_status(dephos_run, capsys):
    run, _, _ = dephos_run
    assert main(["runs", "list", "--root", str(run.path.parent)]) == 0
    assert "dephos" in capsys.readouterr().out
    assert main(["runs", "status", str(run.path)]) == 0
    assert '"state": "finished"' in capsys.readouterr().out
