"""A run's name, tags and notes (about.json): typed by a person, so validated on write, on read and on import."""

from __future__ import annotations

import io
import json
import zipfile

import pytest

from plmcore.archive import import_zip
from plmcore.errors import ArchiveError, RunError
from plmcore.runs import ABOUT_LIMITS, RunDir, check_about


@pytest.fixture
def run(tmp_path) -> RunDir:
    path = tmp_path / "20260101-000000-run"
    path.mkdir()
    return RunDir(path)


def test_a_run_without_about_is_called_by_its_folder(run):
    assert run.about() == {"name": "", "tags": [], "notes": ""}
    assert run.title == run.name


def test_name_tags_and_notes_are_stored_trimmed_and_kept_apart(run):
    run.set_about(name="  centre pooling, r=8 ", tags="pooling, baseline ,, pooling")
    run.set_about(notes="first try\nwith notes")
    assert run.about() == {"name": "centre pooling, r=8", "tags": ["pooling", "baseline"],
                           "notes": "first try\nwith notes"}
    assert run.title == "centre pooling, r=8"
    assert json.loads(run.about_path.read_text())["tags"] == ["pooling", "baseline"]


@pytest.mark.parametrize(("raw", "match"), [
    ({"name": "x" * (ABOUT_LIMITS["name"] + 1)}, "'name'.*at most 80"),
    ({"name": 3}, "'name' must be text"),
    ({"tags": "a,b"}, "'tags' must be a list of texts"),
    ({"tags": [f"t{i}" for i in range(ABOUT_LIMITS["tags"] + 1)]}, "at most 12"),
    ({"name": "bell\x07"}, "control characters"),
    (["not", "an", "object"], "not a JSON object"),
])
def test_bad_about_is_refused_naming_the_field(raw, match):
    with pytest.raises(RunError, match=match):
        check_about(raw)


def test_a_refused_change_writes_nothing(run):
    run.set_about(name="kept")
    with pytest.raises(RunError, match="at most 80"):
        run.set_about(name="y" * 200)
    assert run.title == "kept"


def test_a_hand_damaged_about_does_not_hide_the_run(run):
    run.about_path.write_text('{"name": ["not", "text"]}')
    assert run.title == run.name


def _with_about(archive: bytes, about) -> bytes:
    src = zipfile.ZipFile(io.BytesIO(archive))
    top = src.namelist()[0].split("/")[0]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as out:
        for info in src.infolist():
            out.writestr(info, src.read(info))
        out.writestr(f"{top}/about.json", json.dumps(about))
    return buf.getvalue()


def test_an_imported_about_is_validated(tiny_run_archive, tmp_path):
    good = import_zip(_with_about(tiny_run_archive, {"name": "from a colleague", "tags": ["shared"],
                                                     "extra": "dropped"}), tmp_path / "runs")
    assert good.run.about() == {"name": "from a colleague", "tags": ["shared"], "notes": ""}
    assert "extra" not in json.loads(good.run.about_path.read_text())
    with pytest.raises(ArchiveError, match="'name' must be text"):
        import_zip(_with_about(tiny_run_archive, {"name": {"$": "x"}}), tmp_path / "runs")
