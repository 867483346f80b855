"""End to end in a real browser: `streamlit run app.py`, driven by Playwright in headless Chromium.

Upload the shared dephos FASTA, train the tiny model, watch the loss chart get points, then
score a sequence on the Predict page. Screenshots go to tests/artifacts/.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil
import pytest

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "tests" / "artifacts"
CHROMIUM = os.environ.get("PLMCORE_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"


FINISHED = re.compile(r"^Finished: \d+ epochs? in")  # the live view's ending (plmcore.live.ending)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    if not Path(CHROMIUM).exists():
        pytest.skip(f"Chromium is not installed at {CHROMIUM} (Debian: apt-get install chromium); "
                    ".ci/run installs it where apt-get is allowed")
    pytest.importorskip("playwright.sync_api", reason="playwright is not installed (requirements-dev.txt)")
    port = _free_port()
    tmp = tmp_path_factory.mktemp("browser_tmp")  # the server's temp folder: uploads must not stay there
    workspace = tmp_path_factory.mktemp("browser_ws")
    env = dict(os.environ, PLMCORE_WORKSPACE=str(workspace), PYTHONPATH=str(ROOT), TMPDIR=str(tmp))
    log = (tmp_path_factory.mktemp("browser_log") / "streamlit.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"), "--server.port", str(port),
         "--server.address", "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 90
    while time.time() < deadline:
        try:
            if urllib.request.urlopen(url + "/_stcore/health", timeout=2).read() == b"ok":
                break
        except OSError:
            time.sleep(0.5)
    else:
        proc.terminate()
        pytest.fail(f"streamlit did not start; see {log.name}")
    yield url, Path(log.name), tmp, proc, workspace
    proc.terminate()
    proc.wait(timeout=20)


@pytest.fixture(scope="module")
def page(server):  # noqa: ARG001 - the server must be up before the browser opens
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run", "--disable-quic"],
        )
        pg = browser.new_page(viewport={"width": 1400, "height": 1600})
        pg.set_default_timeout(60_000)
        yield pg
        browser.close()


def _idle(page, timeout: float = 60_000) -> None:
    """Wait until Streamlit has finished the current script run (the attribute its own e2e tests use)."""
    page.locator('[data-testid="stApp"][data-test-script-state="notRunning"]').wait_for(timeout=timeout)


def _upload(page, path: Path) -> None:
    """Set the file on the first uploader and wait for the form it reveals.

    On a cold machine the first reruns can be slow; a file set while a rerun replaces the
    uploader can be dropped by the widget, so wait for the app to be idle and set it again.
    """
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    for attempt in range(3):
        _idle(page)
        page.locator('input[type="file"]').first.set_input_files(str(path))
        try:
            page.get_by_role("button", name="Check and save").wait_for(timeout=30_000)
            return
        except PlaywrightTimeout:
            if attempt == 2:
                raise


def _select(page, label: str, option_text: str) -> None:
    box = page.locator('[data-testid="stSelectbox"]').filter(has_text=label).first
    box.click()
    page.get_by_role("option").filter(has_text=option_text).first.click()


@pytest.fixture
def on_failure(server, page, request):
    """When the test fails, keep a screenshot and print the end of the Streamlit log."""
    yield
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        page.screenshot(path=str(ARTIFACTS / "failure.png"), full_page=True)
        print(f"--- last lines of the Streamlit log; screenshot in {ARTIFACTS / 'failure.png'} ---")
        print("\n".join(server[1].read_text(errors="replace").splitlines()[-60:]))


@pytest.mark.slow
def _save_dataset(page, name: str, path: Path, link: str, saved: str) -> None:
    """Data page (through the `link` named so): upload `path` as dataset `name`, save, wait for `saved`."""
    page.get_by_role("link", name=link, exact=True).click()
    page.get_by_text("Add a dataset").wait_for()
    page.get_by_text("Upload a file", exact=True).click()
    page.get_by_label("Dataset name").fill(name)
    page.get_by_label("Dataset name").press("Enter")
    _upload(page, path)
    page.get_by_role("button", name="Check and save").click()
    page.get_by_text(saved).wait_for()


def test_a_deep_link_first_on_a_fresh_server_shows_the_app(server, page, on_failure):
    """/runs opened before any other page: the app's own navigation and page, no exception; then Home's steps.
    (This test must run first in the module: the server is fresh only once.)"""
    url, log, _, _, workspace = server
    page.goto(url + "/runs")
    _idle(page, 120_000)
    nav = page.locator('[data-testid="stSidebarNav"]')
    nav.get_by_role("link", name="Runs & evaluation", exact=True).wait_for()
    assert nav.get_by_role("link", name="Home", exact=True).count() == 1
    assert nav.get_by_text("app", exact=True).count() == 0  # not Streamlit's file-name navigation
    page.get_by_role("heading", name="Runs & evaluation").wait_for()
    page.get_by_text("No runs yet").wait_for()
    assert page.locator('[data-testid="stException"]').count() == 0
    assert page.locator('[data-testid="stAlertContentError"]').count() == 0  # an empty state is no red error
    page.screenshot(path=str(ARTIFACTS / "0_deep_link_runs.png"))
    nav.get_by_role("link", name="Home", exact=True).click()
    page.get_by_text("Five steps").wait_for()
    for title in ("1. Data", "2. Train", "3. Runs & evaluation", "4. Embeddings", "5. Predict"):
        page.get_by_role("link", name=title, exact=True).wait_for()
    # a table with an id,sequence,class header saves without touching the label control
    rng = __import__("random").Random(3)
    table = workspace.parent / "classes.csv"
    table.write_text("id,sequence,class\n" + "".join(
        f"p{i},{''.join(rng.choice('ACDEFGHIKLMNPQRSTVWY') for _ in range(30))},{'kinase' if i % 2 else 'other'}\n"
        for i in range(40)))
    _save_dataset(page, "classes", table, "1. Data", "Saved dataset 'classes': 40 sequences")
    from plmcore.datasets import DatasetStore

    DatasetStore(workspace / "datasets").delete("classes")  # the next test starts from an empty workspace
    assert not (workspace / "app-errors.log").exists(), (workspace / "app-errors.log").read_text()
    assert "Traceback" not in log.read_text()


def _train_tiny(page, epochs: int = 2) -> None:
    """On the Train page: the tiny model, `epochs`, start, and wait for the end."""
    page.get_by_role("link", name="Train", exact=True).click()
    page.get_by_role("button", name="Start training").wait_for()
    _select(page, "Model", "Tiny ESM")
    box = page.get_by_role("spinbutton", name="Epochs", exact=True).first
    for _ in range(5):  # a rerun triggered by the model choice can reset a value typed too early
        box.fill(str(epochs))
        box.press("Enter")
        page.wait_for_timeout(1500)
        if box.input_value() == str(epochs):
            break
    _idle(page)  # while a rerun moves it, Streamlit shows the button's stale copy beside the new one
    page.get_by_role("button", name="Start training").first.click()


@pytest.mark.slow
def test_upload_train_watch_and_predict(server, page, shared_data, on_failure):
    url, _, tmp, proc, workspace = server
    fasta = shared_data / "dephos_Y" / "train_sequences.fasta"
    page.goto(url)
    page.get_by_text("Five steps").wait_for()  # the home page
    _save_dataset(page, "dephos", fasta, "Data", "Saved dataset 'dephos': 201 sequences")
    heatmap = page.locator(".js-plotly-plot").nth(1)  # class balance, enrichment
    heatmap.wait_for()
    page.screenshot(path=str(ARTIFACTS / "1_data.png"))
    heatmap.scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / "1b_data_charts.png"))

    # a split grouped by protein, saved on the Data page, is what the run records
    page.get_by_text("grouped by protein (UniProt accession)").click()
    _idle(page)
    page.get_by_role("button", name="Save split").click()
    page.get_by_text(re.compile(r"^Split saved")).wait_for()  # not "No split saved yet"
    _train_tiny(page, epochs=3)
    # the live loss chart gets points while the worker trains
    page.locator(".js-plotly-plot .scatterlayer .trace").first.wait_for(timeout=120_000)
    page.screenshot(path=str(ARTIFACTS / "2_training.png"), full_page=False)
    page.get_by_text(FINISHED).first.wait_for(timeout=300_000)
    page.screenshot(path=str(ARTIFACTS / "3_trained.png"), full_page=False)

    page.get_by_role("link", name="Runs & evaluation", exact=True).click()
    page.get_by_role("tab", name="Test metrics").wait_for()
    page.locator(".js-plotly-plot").first.wait_for()  # the confusion matrix
    page.screenshot(path=str(ARTIFACTS / "4_runs.png"), full_page=False)
    page.get_by_text("Random weights — not a result").first.wait_for()  # Tiny ESM has random weights

    page.get_by_role("link", name="Predict", exact=True).click()
    window = fasta.read_text().splitlines()[1]
    page.get_by_role("textbox", name="FASTA (or one sequence per line)").fill(f">my_window\n{window}\n>my_protein\n{window * 3}")
    page.get_by_role("button", name="Score", exact=True).click()
    page.get_by_text("1 window", exact=True).wait_for()
    page.get_by_text("Scanned proteins", exact=True).wait_for()
    page.get_by_text("1 protein, ").first.wait_for()
    page.locator(".js-plotly-plot").first.wait_for()  # probability along the protein
    page.screenshot(path=str(ARTIFACTS / "5_predict.png"), full_page=False)
    page.get_by_text("Random weights — not a result").first.wait_for()
    assert page.get_by_text("my_window").count() >= 1

    from plmcore.runs import RunDir, list_runs

    # two more uploads and trainings in the same session
    for i in (2, 3):
        page.get_by_role("link", name="Data", exact=True).click()
        page.get_by_text("Add a dataset").click()
        page.get_by_text("Upload a file", exact=True).click()
        page.get_by_label("Dataset name").fill(f"dephos {i}")
        page.get_by_label("Dataset name").press("Enter")
        _upload(page, fasta)
        page.get_by_role("button", name="Check and save").click()
        page.get_by_text(f"Saved dataset 'dephos {i}': 201 sequences").wait_for()
        _train_tiny(page, epochs=1)
        deadline = time.time() + 300
        while time.time() < deadline:
            runs = list_runs(workspace / "runs")
            if len(runs) == i and runs[0].status()["state"] == "finished":
                break
            time.sleep(1)
        page.get_by_text(FINISHED).first.wait_for(timeout=60_000)

    runs = list_runs(workspace / "runs")
    assert len(runs) == 3 and all(r.status()["state"] == "finished" for r in runs)
    first = runs[-1]
    config = json.loads(first.config_path.read_text())
    assert config["data"]["split_method"] == "protein" and config["data"]["split_file"] == "split.csv"
    assert config["data"]["dataset"] == "dephos"
    again = tmp / "rerun"
    done = subprocess.run([sys.executable, "-m", "plmcore", "train", "--config", str(first.config_path),
                           "--run-dir", str(again)], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert done.returncode == 0, done.stderr[-2000:]

    def losses(run):
        return [r["train_loss"] for r in run.read_metrics() if r.get("kind") == "train"]

    assert losses(first) and losses(RunDir(again)) == losses(first)
    zombies = [c.pid for c in psutil.Process(proc.pid).children() if c.status() == psutil.STATUS_ZOMBIE]
    assert zombies == [], "finished workers were left as zombies"
    assert not list(tmp.glob("plm-upload-*")), "an upload's temp folder was left behind"
