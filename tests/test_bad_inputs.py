"""The bad-input corpus (tests/data/bad_inputs): each realistic mistake through the library, the CLI and the app.

manifest.json says for each file whether it is refused (and a fragment of the message) or accepted.
Refused files must give exit code 2 and one `error:` line naming the file on the command line, and on
the Data page an error, nothing saved and the earlier dataset unchanged.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from conftest import plain
from streamlit.testing.v1 import AppTest

from plmcore import cli
from plmcore import data as D
from plmcore.datasets import DatasetStore
from plmcore.errors import PlmcoreError

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "tests" / "data" / "bad_inputs"
MANIFEST = {name: entry for name, entry in json.loads((CORPUS / "manifest.json").read_text()).items()
            if not name.startswith("_")}
REFUSED = sorted(name for name, entry in MANIFEST.items() if entry["outcome"] == "error")
ACCEPTED = sorted(name for name, entry in MANIFEST.items() if entry["outcome"] == "accepted")


def test_the_manifest_covers_the_corpus() -> None:
    files = {p.name for p in CORPUS.iterdir() if p.name not in ("manifest.json", "make_corpus.py")}
    assert files == set(MANIFEST)
    assert {entry["outcome"] for entry in MANIFEST.values()} == {"error", "accepted"}


def problems(name: str) -> tuple[str, list[str]]:
    """The message that refuses a corpus file (or ""), and the warnings of reading and checking it."""
    try:
        report = D.validate(D.read_table(CORPUS / name, display_name=name))
        report.raise_for_errors()
    except PlmcoreError as exc:
        return str(exc), []
    return "", [w.message for w in report.warnings]


@pytest.mark.parametrize("name", sorted(MANIFEST))
def test_library_outcome(name: str) -> None:
    entry = MANIFEST[name]
    error, warnings = problems(name)
    if entry["outcome"] == "error":
        assert entry["message"] in error
    else:
        assert not error
        assert entry.get("message", "") in " ".join(warnings)


@pytest.mark.parametrize("name", REFUSED)
def test_cli_refuses_with_one_error_line_naming_the_file(name: str, capsys, tmp_path) -> None:
    rc = cli.main(["train", "--train", str(CORPUS / name), "--model", "random:tiny-esm", "--epochs", "1",
                   "--runs-root", str(tmp_path / "runs")])
    out, err = capsys.readouterr()
    assert rc == 2, err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and name in lines[0], err
    assert MANIFEST[name]["message"] in lines[0].replace(f"{CORPUS}/", ""), err  # the CLI names the whole path
    assert "Traceback" not in out + err
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_cli_process_prints_no_traceback() -> None:
    name = "truncated_download.fasta.gz"
    done = subprocess.run([sys.executable, "-m", "plmcore", "train", "--train", str(CORPUS / name), "--model",
                           "random:tiny-esm", "--epochs", "1"], capture_output=True, text=True, cwd=ROOT,
                          timeout=120)
    assert done.returncode == 2
    assert done.stderr.startswith("error: ") and done.stderr.count("\n") == 1 and name in done.stderr
    assert "Traceback" not in done.stdout + done.stderr


# --------------------------------------------------------------------------- the Data page


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under root, hidden temp files included, with its bytes."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def upload(at: AppTest, name: str, data: bytes, dataset: str) -> AppTest:
    at.file_uploader(key="data_upload").set_value(None)
    at.run()
    at.text_input(key="data_name").set_value(dataset)
    at.file_uploader(key="data_upload").upload(name, data, "application/octet-stream")
    at.run()
    at.button(key="data_save").click().run()
    return at


def shown(at: AppTest) -> str:
    return plain(" ".join([e.value for e in at.error] + [m.value for m in at.markdown]))


@pytest.mark.slow
def test_data_page_refuses_every_bad_upload_and_keeps_the_earlier_dataset(tmp_path, monkeypatch, shared_data):
    monkeypatch.setenv("PLMCORE_WORKSPACE", str(tmp_path / "ws"))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.run()
    at.switch_page("pages/data.py").run()
    at.radio(key="data_how").set_value("Upload a file").run()
    good = shared_data / "dephos_Y" / "train_sequences.fasta"
    upload(at, good.name, good.read_bytes(), "dephos")
    assert any("Saved dataset 'dephos'" in plain(s.value) for s in at.success), shown(at)
    root = DatasetStore().root
    before = snapshot(root)
    for name in REFUSED:
        upload(at, name, (CORPUS / name).read_bytes(), "dephos")  # the same name: must not replace it
        assert not at.exception, (name, at.exception)
        assert at.error, name
        assert MANIFEST[name]["message"] in shown(at), (name, shown(at))
        assert not any("Saved dataset" in plain(s.value) for s in at.success), name
        assert snapshot(root) == before, name
    for name in ACCEPTED:
        upload(at, name, (CORPUS / name).read_bytes(), Path(name).stem)
        assert not at.exception and not at.error, (name, shown(at))
        assert any(f"Saved dataset '{Path(name).stem}': 12 sequences" in plain(s.value) for s in at.success), name
    assert (root / "dephos" / "table.csv").read_bytes() == before["dephos/table.csv"]
    assert not list((tmp_path / "tmp").iterdir())  # every upload's temp folder was removed
