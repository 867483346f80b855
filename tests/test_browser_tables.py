"""In a real browser: a header-less PTM table (label, accession, site, window, residue) through the Data
page's column mapper, a split grouped by protein, and a run trained on it. Screenshots go to tests/artifacts/."""

from __future__ import annotations

import re
import time

import pandas as pd
import pytest
from test_browser import ARTIFACTS, FINISHED, _idle, _train_tiny, _upload, on_failure, page, server  # noqa: F401
from test_tables import ptm_rows, write_rows


@pytest.mark.slow
def test_headerless_table_mapped_split_by_protein_and_trained(server, page, tmp_path, on_failure):  # noqa: F811
    url, _, _, _, workspace = server
    path = write_rows(tmp_path / "dephosnet_style.csv", ptm_rows(n_proteins=20, per_protein=3))
    page.goto(url)
    page.get_by_text("Five steps").wait_for()  # the home page
    page.get_by_role("link", name="Data", exact=True).click()
    page.get_by_text("Add a dataset").wait_for()
    page.get_by_text("Upload a file", exact=True).click()
    page.get_by_label("Dataset name").fill("ptm table")
    page.get_by_label("Dataset name").press("Enter")
    _upload(page, path)
    page.get_by_text("detected: no header row").wait_for()
    page.get_by_text("Classes found: 0 (30), 1 (30)").wait_for()
    # the site column (2) is guessed as the position; give it the id-part role too
    site = page.locator('[data-testid="stMultiSelect"]').nth(2)
    site.click()
    page.get_by_role("option", name="id part").click()
    page.keyboard.press("Escape")
    _idle(page)
    page.get_by_text("ids from column 1 + column 2").wait_for()
    page.screenshot(path=str(ARTIFACTS / "tables_1_mapper.png"), full_page=True)
    page.get_by_role("button", name="Check and save").click()
    page.get_by_text("Saved dataset 'ptm table': 60 sequences").wait_for()

    page.get_by_text("grouped by protein (UniProt accession)").click()
    _idle(page)
    page.get_by_role("button", name="Save split").click()
    page.get_by_text(re.compile(r"^Split saved")).wait_for()  # not "No split saved yet"
    page.screenshot(path=str(ARTIFACTS / "tables_2_split.png"), full_page=True)
    _train_tiny(page, epochs=2)
    page.get_by_text(FINISHED).first.wait_for(timeout=300_000)
    page.screenshot(path=str(ARTIFACTS / "tables_3_trained.png"))

    from plmcore.runs import list_runs

    deadline = time.time() + 60
    while time.time() < deadline and not any(r.config().data.dataset == "ptm table" for r in list_runs(
            workspace / "runs")):
        time.sleep(1)
    run = next(r for r in list_runs(workspace / "runs") if r.config().data.dataset == "ptm table")
    assert run.status()["state"] == "finished"
    split = pd.read_csv(run.split_path, dtype=str)
    assert split["id"].iloc[0] == "P00000_10" and split["id"].is_unique
    accessions = {part: set(rows["group"]) for part, rows in split.groupby("split")}
    assert accessions["test"] and not accessions["train"] & accessions["test"]
    assert not accessions["val"] & accessions["test"] and not accessions["train"] & accessions["val"]
