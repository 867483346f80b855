"""Safe to serve and to share runs with: no code from files, one bad run cannot break the app,
per-user workspaces when served, escaped user text, reaped workers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from conftest import motif_windows, plain, write_fasta
from streamlit.testing.v1 import AppTest

from plmcore.archive import import_zip
from plmcore.config import DataSpec, TrainConfig
from plmcore.runs import RunDir, list_runs, start_worker, wait, worker_alive
from plmcore.train import create_run

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "app.py")


def messages(at: AppTest) -> str:
    parts = [e.value for e in (*at.error, *at.warning, *at.info, *at.success, *at.markdown, *at.caption)]
    return plain(" ".join(parts))


def app(page: str | None = None, **setup) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    for key, value in setup.items():
        setattr(at, key, value)
    at.run()  # the home page
    at.switch_page(f"pages/{page or 'data'}.py").run()
    assert not at.exception, at.exception
    return at


@pytest.fixture
def workspace(tmp_path, monkeypatch):
    monkeypatch.setenv("PLMCORE_WORKSPACE", str(tmp_path / "ws"))
    return tmp_path / "ws"


@pytest.fixture(scope="module")
def archive(tiny_run_archive) -> bytes:
    return tiny_run_archive


def test_no_pickle_or_unsafe_load_anywhere_in_the_engine():
    found = subprocess.run(["grep", "-rn", r"weights_only=False\|pickle.load\|allow_pickle=True", str(ROOT / "plmcore")],
                           capture_output=True, text=True)
    assert found.stdout == ""


def test_predict_and_embeddings_never_run_the_code_of_an_imported_run(workspace, archive, evil_model):
    folder, sentinel = evil_model
    import io
    import zipfile

    with zipfile.ZipFile(io.BytesIO(archive)) as zf:
        members = {i.filename: zf.read(i) for i in zf.infolist()}
    config = json.loads(members["src-run/config.json"])
    config.update(model=str(folder), trust_remote_code=True)
    members["src-run/config.json"] = json.dumps(config).encode()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, payload in members.items():
            zf.writestr(name, payload)
    imported = import_zip(buf.getvalue(), workspace / "runs")
    assert imported.run.summary()["state"] == "finished"
    at = app("predict")  # Predict loads the newest finished run as soon as it opens
    assert "needs its own code" in messages(at)
    from plmcore import data as D
    from plmcore.datasets import DatasetStore

    DatasetStore(workspace / "datasets").save("motif", D.validate(D.parse_fasta_text(
        "".join(f">{i} LABEL={lab}\n{s}\n" for i, s, lab in motif_windows(20)))).table)
    at = app("embeddings")
    at.button(key="emb_go").click().run()
    assert not at.exception
    assert not sentinel.exists(), "the model's own code ran"


def test_a_damaged_run_shows_its_error_and_a_delete_button_and_the_rest_keeps_working(workspace, archive):
    good = import_zip(archive, workspace / "runs").run
    bad = RunDir(workspace / "runs" / "broken-run")
    bad.path.mkdir()
    (bad.path / "config.json").write_text("[]")
    (bad.path / "status.json").write_text('{"state": "finished", "step": "lots"}')
    os.utime(bad.path)  # newest, so the Runs page picks it first
    at = app("runs")
    text = messages(at)
    assert "damaged" in text and "config.json" in text
    assert at.button(key="runs_delete")
    table = at.dataframe[0].value
    assert set(table["status"]) == {"damaged", "finished"}
    for page in ("data", "train", "predict", "embeddings"):
        assert not app(page).exception
    at.checkbox(key="runs_delete_ok").check().run()
    at.button(key="runs_delete").click().run()
    assert [r.name for r in list_runs(workspace / "runs")] == [good.name]


def test_hostile_text_is_escaped_not_rendered(workspace, tmp_path):
    hostile = "![pixel](http://127.0.0.1:9/track.png)"
    fasta = tmp_path / "hostile.fasta"
    fasta.write_text(f">{hostile} LABEL=1\nMKTAYIAK\n>ok LABEL=0\nMKT4YIAK\n")
    at = app()
    at.radio(key="data_how").set_value("Upload a file").run()
    at.file_uploader(key="data_upload").upload(fasta.name, fasta.read_bytes(), "text/plain")
    at.run()
    at.button(key="data_save").click().run()
    raw = " ".join(m.value for m in (*at.markdown, *at.error))
    assert "\\!\\[pixel\\]\\(http\\:" in raw or "MKT4YIAK" not in raw  # the id, if shown, is escaped
    assert "](http://127.0.0.1:9" not in raw


# --------------------------------------------------------------------------- served


def test_served_without_sign_in_does_not_open(workspace, monkeypatch):
    monkeypatch.setenv("PLMCORE_SERVED", "1")
    at = app()
    assert "sign-in is not set up" in plain(at.error[0].value)
    assert not at.get("file_uploader")
    monkeypatch.setenv("PLMCORE_ALLOW_ANONYMOUS", "1")
    assert app().get("file_uploader") or app().radio(key="data_how")


AUTH = {"auth": {"redirect_uri": "http://localhost:8501/oauth2callback", "cookie_secret": "x" * 32,
                 "client_id": "id", "client_secret": "secret",
                 "server_metadata_url": "https://idp.example.org/.well-known/openid-configuration"}}


def served_app(page: str | None, email: str | None) -> AppTest:
    user = {"is_logged_in": True, "email": email} if email else {"is_logged_in": False}
    return app(page, secrets=AUTH, user=user)


def test_served_users_sign_in_and_each_gets_their_own_workspace(workspace, monkeypatch, tmp_path):
    monkeypatch.setenv("PLMCORE_SERVED", "1")
    at = served_app(None, None)
    assert at.button(key="sign_in") and not at.get("file_uploader")
    fasta = write_fasta(tmp_path / "a.fasta", motif_windows(40))
    at = served_app(None, "alice@lab.org")
    at.radio(key="data_how").set_value("Upload a file").run()
    at.text_input(key="data_name").set_value("alice data")
    at.file_uploader(key="data_upload").upload(fasta.name, fasta.read_bytes(), "text/plain")
    at.run()
    at.button(key="data_save").click().run()
    assert "Saved dataset" in messages(at)
    assert any("alice data" in str(o) for o in at.selectbox(key="data_current").options)
    bob = served_app(None, "bob@lab.org")
    assert not bob.get("selectbox") or "alice data" not in str(bob.selectbox(key="data_current").options)
    users = sorted(p.name for p in (workspace / "users").iterdir())
    assert len(users) == 1 and users[0].startswith("alice_lab.org-")
    assert not (workspace / "datasets").exists()  # nothing in the shared workspace


def test_a_served_app_does_not_load_or_probe_server_folders(workspace, monkeypatch, archive, tiny_esm):
    monkeypatch.setenv("PLMCORE_SERVED", "1")
    at = served_app("train", "alice@lab.org")
    assert "Add a dataset" in messages(at) or at.get("page_link")
    from plmcore.ui import user_folder

    user_ws = workspace / "users" / user_folder("alice@lab.org")
    import_zip(archive, user_ws / "runs")
    run = list_runs(user_ws / "runs")[0]
    cfg = json.loads(run.config_path.read_text())
    cfg["model"] = str(tiny_esm)  # a real model folder on the server
    run.config_path.write_text(json.dumps(cfg))
    at = served_app("predict", "alice@lab.org")
    assert "loads models only from the HuggingFace hub" in messages(at)
    monkeypatch.setenv("PLMCORE_MODEL_DIRS", str(Path(tiny_esm).parent))
    at = served_app("predict", "alice@lab.org")
    assert "loads models only" not in messages(at)


# --------------------------------------------------------------------------- processes


def _motif_run(tmp_path, **kw) -> RunDir:
    fasta = write_fasta(tmp_path / "motif.fasta", motif_windows(40))
    config = TrainConfig(model="random:tiny-esm", baselines=False, **kw,
                         data=DataSpec(train=(str(fasta),), val_fraction=0.2, test_fraction=0.2))
    return create_run(config, run_dir=tmp_path / "run")


def _zombies() -> list[int]:
    return [c.pid for c in psutil.Process().children() if c.status() == psutil.STATUS_ZOMBIE]


@pytest.mark.slow
def test_a_finished_worker_is_reaped_and_a_killed_one_is_marked_failed(tmp_path):
    run = _motif_run(tmp_path, epochs=300, patience=None)
    pid = start_worker(run)
    deadline = time.time() + 120
    while (run.read_status().get("step") or 0) < 2 and time.time() < deadline:
        time.sleep(0.2)
    os.kill(pid, signal.SIGKILL)
    deadline = time.time() + 30
    while run.read_status().get("state") != "failed" and time.time() < deadline:
        time.sleep(0.2)
    status = run.read_status()  # written by the reaper, without anyone asking for status()
    assert status["state"] == "failed" and status["exit_code"] == -signal.SIGKILL
    assert "ended unexpectedly" in status["error"]
    assert pid not in _zombies()


def test_a_reused_pid_does_not_make_a_dead_run_look_alive(tmp_path):
    run = _motif_run(tmp_path, epochs=1)
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        started = psutil.Process(sleeper.pid).create_time()
        run.write_status("running", pid=sleeper.pid, pid_started=started)
        assert worker_alive(run.read_status()) and run.status()["state"] == "running"
        run.write_status("running", pid=sleeper.pid, pid_started=started - 3600)  # same pid, other process
        assert not worker_alive(run.read_status())
        assert run.status()["state"] == "failed"
    finally:
        sleeper.kill()
        sleeper.wait()


@pytest.mark.slow
def test_workers_started_three_times_leave_no_zombie(tmp_path):
    for i in range(3):
        folder = tmp_path / f"r{i}"
        folder.mkdir()
        run = _motif_run(folder, epochs=1)
        start_worker(run)
        assert wait(run, timeout=120)["state"] == "finished", run.log_tail()
    time.sleep(0.5)
    assert _zombies() == []
