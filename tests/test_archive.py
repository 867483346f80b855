"""Run archives are untrusted input: crafted archives must never write outside one new run folder,
run code, exhaust memory, or leave anything behind when refused."""

from __future__ import annotations

import io
import json
import os
import stat
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from plmcore.archive import import_zip
from plmcore.errors import ArchiveError, ModelLoadError
from plmcore.predict import load_run
from plmcore.runs import DAMAGED, RunDir, list_runs

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def exported(tiny_run_archive) -> bytes:
    return tiny_run_archive


def files(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return {i.filename: zf.read(i) for i in zf.infolist() if not i.is_dir()}


def build(members: dict[str, bytes], *, symlinks: tuple[str, ...] = ()) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, payload in members.items():
            info = zipfile.ZipInfo(name)
            info.compress_type = zipfile.ZIP_DEFLATED
            if name in symlinks:
                info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, payload)
    return buf.getvalue()


def renamed(members: dict[str, bytes], top: str) -> dict[str, bytes]:
    return {f"{top}/{name.split('/', 1)[1]}" if top else name.split("/", 1)[1]: v for name, v in members.items()}


def snapshot(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


@pytest.fixture
def space(tmp_path):
    """A workspace with something in it, and a sentinel path any executed code would create."""
    ws = tmp_path / "ws"
    (ws / "runs").mkdir(parents=True)
    (ws / "ui_state.json").write_text('{"dataset": "mine"}')
    (ws / "datasets" / "mine").mkdir(parents=True)
    (ws / "datasets" / "mine" / "meta.json").write_text('{"name": "mine"}')
    return ws


def refused(data: bytes, space: Path, match: str) -> None:
    before = snapshot(space)
    with pytest.raises(ArchiveError, match=match) as info:
        import_zip(data, space / "runs")
    assert "Nothing was imported" in str(info.value)
    assert snapshot(space) == before, "a refused archive left files behind"


def test_round_trip_and_a_name_clash_gets_a_fresh_name(exported, space):
    before = snapshot(space)
    first = import_zip(exported, space / "runs")
    second = import_zip(exported, space / "runs")  # importing twice is the ordinary case
    assert first.run.name == "src-run" and second.run.name == "src-run-1"
    assert any("imported as src-run-1" in n for n in second.notes)
    added = snapshot(space) - before
    assert all(p.startswith("runs/src-run") for p in added)
    assert not any("checkpoint" in p for p in added)
    assert [r.name for r in list_runs(space / "runs")] and first.run.problem() is None
    a = load_run(first.run).predict_proba(["ACDEFGHYPKLMNQR"])
    b = load_run(second.run).predict_proba(["ACDEFGHYPKLMNQR"])
    assert (a == b).all()


def test_export_carries_no_checkpoint_and_no_absolute_server_paths(exported, tmp_path):
    members = files(exported)
    assert not any("/checkpoint/" in n for n in members)
    config = json.loads(members["src-run/config.json"])
    assert config["data"]["train"] == ["motif.fasta"] and "trust_remote_code" not in config
    for name, payload in members.items():
        if name.endswith((".json", ".csv", ".log", ".jsonl")):
            text = payload.decode()
            assert str(tmp_path.parent) not in text and str(Path.home()) + "/" not in text, name


@pytest.mark.parametrize("name, match", [
    ("src-run/../evil.txt", "path component"),
    ("../evil/config.json", "path component"),
    ("/tmp/evil/config.json", "absolute path"),
    ("C:/evil/config.json", "drive letter"),
    ("src-run\\..\\evil.txt", "backslash"),
    ("src-run/./config.json", "path component"),
    ("src-run//config.json", "empty"),
    ("src-run/" + "a" * 300, "longer than"),
])
def test_unsafe_names_are_refused_before_anything_is_written(exported, space, name, match):
    members = files(exported)
    members[name] = b"x"
    refused(build(members), space, match)


@pytest.mark.parametrize("top", ["..", ".", ""])
def test_a_top_folder_of_dots_or_nothing_is_refused(exported, space, top):
    refused(build(renamed(files(exported), top)), space, "path component|not inside a run folder")


def test_a_symlink_is_refused(exported, space):
    members = files(exported)
    members["src-run/train.log"] = b"/etc/passwd"
    refused(build(members, symlinks=("src-run/train.log",)), space, "symbolic link")


def test_a_checkpoint_pickle_is_refused(exported, space):
    members = files(exported)
    members["src-run/checkpoint/trainer_state.pt"] = b"\x80\x04cos\nsystem\n."  # a pickle
    refused(build(members), space, "training checkpoint")


def test_model_code_and_other_files_are_refused(exported, space):
    members = files(exported)
    members["src-run/model/configuration_evil.py"] = b"open('/tmp/pwned', 'w')"
    refused(build(members), space, "not a file of a run")


def test_too_many_entries_are_refused_from_the_directory_alone(space, monkeypatch):
    monkeypatch.setenv("PLMCORE_MAX_ARCHIVE_MEMBERS", "50")
    refused(build({f"r/x{i}": b"" for i in range(51)}), space, "51 entries")


def test_a_zip_bomb_is_refused_without_inflating_it(exported, space):
    members = files(exported)
    members.pop("src-run/train.log")
    buf = io.BytesIO(build(members))
    with zipfile.ZipFile(buf, "a", zipfile.ZIP_DEFLATED) as zf, zf.open("src-run/train.log", "w") as out:
        zeros = bytes(1 << 20)
        for _ in range(256):  # 256 MiB of zeros, about 250 KB compressed
            out.write(zeros)
    refused(buf.getvalue(), space, "inflate .*-fold")


def test_a_member_that_lies_about_its_size_is_stopped_while_streaming(exported, space):
    members = files(exported)
    members["src-run/train.log"] = b"A" * 4_000_000
    data = bytearray(build(members))
    name = b"src-run/train.log"
    # patch the declared uncompressed size (local header +22, central directory +24) to 100 bytes
    for signature, offset, name_at in ((b"PK\x03\x04", 22, 30), (b"PK\x01\x02", 24, 46)):
        pos = data.find(signature)
        while pos >= 0:
            length = struct.unpack("<H", data[pos + name_at - 4:pos + name_at - 2])[0] if signature == b"PK\x03\x04" \
                else struct.unpack("<H", data[pos + 28:pos + 30])[0]
            if bytes(data[pos + name_at:pos + name_at + length]) == name:
                data[pos + offset:pos + offset + 4] = struct.pack("<I", 100)
            pos = data.find(signature, pos + 4)
    refused(bytes(data), space, "beyond its declared size")  # zipfile's own size/CRC check, or ours


def test_the_archive_size_budget_holds(exported, space, monkeypatch):
    monkeypatch.setenv("PLMCORE_MAX_ARCHIVE_MB", "1")
    members = files(exported)
    members["src-run/train.log"] = os.urandom(2 << 20)  # incompressible: no ratio alarm, only the budget
    refused(build(members), space, "unpack to")


@pytest.mark.parametrize("file, payload, match", [
    ("config.json", b"[]", "not the settings"),
    ("config.json", b'"text"', "not the settings"),
    ("config.json", b"{broken", "not valid JSON"),
    ("config.json", b'{"epochs": "ten"}', "valid settings"),
    ("config.json", b'{"pooling": "sum"}', "pooling"),
    ("config.json", b'{"rm_rf": true}', "unknown setting"),
    ("status.json", b"[]", "not a JSON object"),
    ("status.json", b'{"state": 5}', "state"),
    ("status.json", b'{"state": "finished", "step": "many"}', "whole number"),
    ("labels.json", b"[]", "not a JSON object"),
    ("labels.json", b'{"classes": "01"}', "list of texts"),
    ("labels.json", b'{"classes": ["0", "1"], "positive": "2"}', "positive class"),
    ("test_report.json", b"[1, 2]", "not a JSON object"),
    ("comparison.json", b'"verdict"', "not a JSON object"),
])
def test_malformed_json_of_each_kind_is_refused(exported, space, file, payload, match):
    members = files(exported)
    members[f"src-run/{file}"] = payload
    refused(build(members), space, match)


def test_no_archive_is_a_clear_refusal(space):
    refused(b"this is not a zip", space, "not a zip archive")
    refused(build({"r/split.csv": b"id\n"}), space, "holds no run")


def test_an_imported_run_asking_for_remote_code_never_runs_it(exported, space, evil_model):
    folder, sentinel = evil_model
    members = files(exported)
    config = json.loads(members["src-run/config.json"])
    config.update(model=str(folder), trust_remote_code=True)
    members["src-run/config.json"] = json.dumps(config).encode()
    imported = import_zip(build(members), space / "runs")
    assert any("trust_remote_code" in n and "dropped" in n for n in imported.notes)
    saved = json.loads(imported.run.config_path.read_text())
    assert "trust_remote_code" not in saved
    with pytest.raises(ModelLoadError, match="own code"):
        load_run(imported.run)
    assert not sentinel.exists()


def test_a_damaged_run_is_listed_as_damaged_and_the_others_keep_working(exported, space):
    good = import_zip(exported, space / "runs").run
    for name, text in (("status.json", "[]"), ("config.json", "[]"), ("labels.json", '{"classes": 3}')):
        bad = RunDir(space / "runs" / f"bad-{name.split('.')[0]}")
        bad.path.mkdir()
        for f in ("config.json", "status.json"):
            (bad.path / f).write_text((good.path / f).read_text())
        (bad.path / name).write_text(text)
        assert bad.problem(), name
        if name != "labels.json":
            assert bad.summary()["state"] == DAMAGED
    assert good.problem() is None and good.summary()["state"] == "finished"
    assert len(list_runs(space / "runs")) == 4


def test_import_memory_stays_bounded_for_a_large_archive(tmp_path):
    """A 300 MiB member (incompressible, under the limits) streams: peak RSS stays near the archive's own size."""
    script = f"""
import io, os, resource, sys, zipfile
sys.path.insert(0, {str(ROOT)!r})
from plmcore.archive import import_zip
buf = io.BytesIO()
with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
    zf.writestr("r/config.json", "{{}}")
    with zf.open("r/train.log", "w") as out:
        block = os.urandom(1 << 20)
        for _ in range(300):
            out.write(block)
data = buf.getvalue(); del buf
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
import_zip(data, {str(tmp_path / "runs")!r})
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print((peak - base) // 1024)
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    growth_mb = int(out.stdout.strip().splitlines()[-1])
    assert growth_mb < 100, f"import grew RSS by {growth_mb} MB beyond the archive itself"
