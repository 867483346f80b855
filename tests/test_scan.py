"""Proteome scans (plmcore.scan): streamed output equals in-memory prediction, resume, refusals, one pass per protein."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import motif_windows, write_fasta

from plmcore import data as D
from plmcore.cli import main
from plmcore.config import DataSpec, TrainConfig
from plmcore.predict import clean_input, load_run, predict_table
from plmcore.scan import ScanError, ScanSettings, progress_path, scan_file
from plmcore.train import train

TASKS = Path(__file__).resolve().parent / "data" / "tasks"


@pytest.fixture(scope="module")
def window_run(tmp_path_factory):
    """A tiny run trained on 15-residue windows centred on Y."""
    folder = tmp_path_factory.mktemp("scan_run")
    fasta = write_fasta(folder / "motif.fasta", motif_windows(60))
    config = TrainConfig(model="random:tiny-esm", epochs=1, baselines=False,
                         data=DataSpec(train=(str(fasta),), val_fraction=0.2, test_fraction=0.2))
    return load_run(train(config, run_dir=folder / "run"))


@pytest.fixture(scope="module")
def residue_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("scan_residue_run")
    fasta = folder / "residues.fasta"  # the first 30 proteins of the synthetic per-residue set
    fasta.write_text("".join((TASKS / "residues.fasta").read_text().splitlines(keepends=True)[:60]))
    sites = pd.read_csv(TASKS / "residues_sites.csv")
    sites[sites["protein"].str.extract(r"PROT(\d+)_", expand=False).astype(int) < 30].to_csv(
        folder / "sites.csv", index=False)
    config = TrainConfig(model="random:tiny-esm", epochs=1, baselines=False, patience=None,
                         data=DataSpec(train=(str(fasta),), sites_file=str(folder / "sites.csv"),
                                       val_fraction=0.2, test_fraction=0.2))
    return load_run(train(config, run_dir=folder / "run"))


def proteome(path: Path, n: int = 24, seed: int = 3) -> Path:
    """`n` proteins of 10..300 residues (one of exactly the window length, one in lowercase)."""
    rng = np.random.default_rng(seed)
    alphabet = np.array(list(D.AMINO_ACIDS))
    lines = []
    for i in range(n):
        length = 15 if i == 5 else int(rng.integers(10, 300))
        seq = "".join(rng.choice(alphabet, size=length))
        if i == 7:
            seq = seq.lower()
        lines.append(f">prot{i} synthetic\n{seq[:60]}\n{seq[60:]}\n")
    path.write_text("".join(lines))
    return path


def in_memory(loaded, path: Path, settings: ScanSettings, columns: list[str]) -> pd.DataFrame:
    table, _ = clean_input(D.read_table(path, label_source="none"))
    frames = predict_table(loaded, table, scan=settings.scan, residues=settings.residues, window=settings.window,
                           threshold=settings.threshold)
    out = pd.concat([df.assign(kind=kind) for kind, df in frames.items()], ignore_index=True)
    return pd.read_csv(io.StringIO(out.reindex(columns=columns).to_csv(index=False)))


@pytest.mark.parametrize("which", ["window", "residue"])
def test_streamed_scan_equals_in_memory_prediction(which, window_run, residue_run, tmp_path):
    loaded = window_run if which == "window" else residue_run
    fasta = proteome(tmp_path / "proteome.fasta")
    out = tmp_path / "sites.csv"
    settings = ScanSettings()
    warnings = []
    state = scan_file(loaded, fasta, out, settings, chunk_residues=400, warn=warnings.append)
    assert state["finished"] and state["records_done"] == state["records_total"] == 24
    streamed = pd.read_csv(out)
    expected = in_memory(loaded, fasta, settings, list(streamed.columns))
    assert len(streamed) == state["rows"] > 24
    # rows of each kind come in input order; a chunk gives its directly scored windows first
    for kind in ("windows", "sites"):
        pd.testing.assert_frame_equal(streamed[streamed["kind"] == kind].reset_index(drop=True),
                                      expected[expected["kind"] == kind].reset_index(drop=True),
                                      check_exact=False, rtol=1e-4, atol=1e-6)
    assert any("lowercase" in w for w in warnings)
    if which == "window":  # the window-length record is scored directly, the rest scanned at each Y
        assert set(streamed["kind"]) == {"windows", "sites"}
        assert (streamed.loc[streamed["kind"] == "sites", "residue"] == "Y").all()


def test_an_interrupted_scan_resumes_to_the_same_csv(window_run, tmp_path):
    fasta = proteome(tmp_path / "proteome.fasta", n=30)
    whole = tmp_path / "whole.csv"
    scan_file(window_run, fasta, whole, chunk_residues=500)
    part = tmp_path / "part.csv"
    chunks = []
    state = scan_file(window_run, fasta, part, chunk_residues=500, on_chunk=lambda s: chunks.append(1),
                      stop=lambda: len(chunks) >= 3)
    assert not state["finished"] and 0 < state["records_done"] < 30
    # a crash in the middle of the next chunk: half a row on disk, not counted in the progress file
    with open(part, "a") as fh:
        fh.write("sites,prot17,12,Y,ACDEF")
    seen = []
    state = scan_file(window_run, fasta, part, chunk_residues=500, progress=lambda d, t: seen.append(d))
    assert state["finished"]
    assert seen[0] > 0  # it started where the first scan stopped
    assert part.read_bytes() == whole.read_bytes()
    # a finished scan asked again changes nothing
    scan_file(window_run, fasta, part, chunk_residues=500)
    assert part.read_bytes() == whole.read_bytes()


def test_a_scan_refuses_to_resume_on_another_input_or_settings(window_run, tmp_path):
    fasta = proteome(tmp_path / "proteome.fasta")
    out = tmp_path / "sites.csv"
    scan_file(window_run, fasta, out, chunk_residues=500, stop=lambda: True)
    with pytest.raises(ScanError, match="threshold"):
        scan_file(window_run, fasta, out, ScanSettings(threshold=0.3), chunk_residues=500)
    fasta.write_text(fasta.read_text().replace(">prot3 ", ">prot3b "))
    with pytest.raises(ScanError, match="input file's content.*--restart"):
        scan_file(window_run, fasta, out, chunk_residues=500)
    state = scan_file(window_run, fasta, out, chunk_residues=500, restart=True)
    assert state["finished"] and "prot3b" in set(pd.read_csv(out)["protein_id"].dropna())


def test_a_duplicate_id_is_refused_with_its_line(window_run, tmp_path):
    fasta = tmp_path / "dup.fasta"
    fasta.write_text(">a\nMKYLLPTAY\n>b\nMKYLL\n>a\nGGYGG\n")
    with pytest.raises(D.DataError, match=r"dup.fasta:5.*'a' appears twice"):
        scan_file(window_run, fasta, tmp_path / "out.csv")


def test_a_per_residue_run_makes_one_pass_per_protein(residue_run, tmp_path, monkeypatch):
    fasta = proteome(tmp_path / "proteome.fasta", n=20)
    rows = []
    forward = residue_run.model.forward

    def counting(batch, *a, **kw):
        rows.append(batch.input_ids.shape[0])
        return forward(batch, *a, **kw)

    monkeypatch.setattr(residue_run.model, "forward", counting)
    rows.clear()
    scan_file(residue_run, fasta, tmp_path / "out.csv", chunk_residues=1000)
    probe = 2  # output_columns' probe: two short records, one pass each
    assert sum(rows) == 20 + probe
    assert len(rows) < 20  # proteins share batches


def test_cli_scans_a_file_and_resumes(window_run, tmp_path, capsys):
    fasta = proteome(tmp_path / "proteome.fasta")
    out = tmp_path / "sites.csv"
    assert main(["predict", str(window_run.source), "--input", str(fasta), "--output", str(out)]) == 0
    text = capsys.readouterr().out
    assert "24 records" in text and progress_path(out).exists()
    first = out.read_bytes()
    assert main(["predict", str(window_run.source), "--input", str(fasta), "--output", str(out),
                 "--threshold", "0.2"]) == 2
    assert "--restart" in capsys.readouterr().err
    assert main(["predict", str(window_run.source), "--input", str(fasta), "--output", str(out), "--restart"]) == 0
    assert out.read_bytes() == first


@pytest.mark.slow
def test_predict_page_scans_a_big_upload_in_the_background(tmp_path, monkeypatch):
    """An upload of more proteins than BACKGROUND_PROTEINS goes to a worker; the page shows its progress,
    then the CSV to download, which is what the command line writes."""
    from streamlit.testing.v1 import AppTest

    from plmcore import scan as S
    from plmcore.runs import wait

    ws = tmp_path / "ws"
    monkeypatch.setenv("PLMCORE_WORKSPACE", str(ws))
    monkeypatch.setattr(S, "BACKGROUND_PROTEINS", 10)
    fasta = write_fasta(tmp_path / "motif.fasta", motif_windows(60))
    train(TrainConfig(model="random:tiny-esm", epochs=1, baselines=False,
                      data=DataSpec(train=(str(fasta),), val_fraction=0.2, test_fraction=0.2)),
          run_dir=ws / "runs" / "motif")
    big = proteome(tmp_path / "proteome.fasta", n=24)
    at = AppTest.from_file(str(Path(__file__).resolve().parents[1] / "app.py"), default_timeout=180)
    at.run()
    at.switch_page("pages/predict.py").run()
    at.radio(key="pred_how").set_value("Upload a FASTA file").run()
    at.file_uploader(key="pred_upload").upload(big.name, big.read_bytes(), "text/plain")
    at.run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert any("24 proteins" in i.value and "background" in i.value for i in at.info)
    assert not at.get("button") or "pred_go" not in [b.key for b in at.button]  # no immediate scoring
    at.button(key="pred_bg_go").click().run()
    job = S.list_scans(ws)[0]
    status = wait(job, timeout=300)
    assert status["state"] == "finished", job.log_tail()
    at.run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert any("Finished" in s.value for s in at.success)
    assert "plmcore predict" in " ".join(c.value for c in at.caption)
    expected = tmp_path / "cli.csv"
    assert main(["predict", str(ws / "runs" / "motif"), "--input", str(big), "--output", str(expected)]) == 0
    assert job.output_path.read_bytes() == expected.read_bytes()
