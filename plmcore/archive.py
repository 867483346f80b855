"""Run archives: export a run as a zip, and import one safely.

An archive is untrusted input. Import checks the whole archive before writing anything (names,
entry types, sizes, count), allows only the files of the run format (plmcore.runs.RUN_FILES:
never a checkpoint, model code or any other file), streams the entries into a hidden staging
folder under a size budget, validates config.json, labels.json and status.json against the
engine's schemas, and only then renames the folder into place under a fresh name. A refused
archive leaves nothing behind, and the message says why.

Export leaves the checkpoint out and strips the server's absolute paths.
"""

from __future__ import annotations

import io
import json
import re
import shutil
import stat
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from plmcore.errors import ArchiveError, ConfigError, RunError
from plmcore.limits import MiB, limits
from plmcore.runs import (
    ACTIVE_STATES,
    RUN_FILES,
    RunDir,
    check_about,
    check_labels,
    check_status,
    fresh_name,
    runs_root,
    staging_dir,
    write_json,
)

_TEXT_SUFFIXES = (".json", ".jsonl", ".csv", ".log", ".md")
_RUN_FOLDERS = {str(Path(f).parent) for f in RUN_FILES if "/" in f} | {"best"}
_DRIVE = re.compile(r"^[A-Za-z]:")
_MAX_PATH = 240
_MAX_PART = 120
_CHUNK = MiB


# --------------------------------------------------------------------------- export


def export_zip(run: RunDir) -> bytes:
    """The run as a zip of its run-format files, without the checkpoint and without server paths."""
    run.require()
    config = portable_config(run)
    prefixes = _server_prefixes(run)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for rel in RUN_FILES:
            path = run.path / rel
            if not path.is_file():
                continue
            arcname = f"{run.name}/{rel}"
            if rel == "config.json":
                zf.writestr(arcname, _scrub(json.dumps(config, indent=2), prefixes) + "\n")
            elif path.suffix in _TEXT_SUFFIXES:
                zf.writestr(arcname, _scrub(path.read_text(errors="replace"), prefixes))
            else:
                zf.write(path, arcname)
    return buf.getvalue()


def portable_config(run: RunDir) -> dict:
    """config.json with file paths reduced to file names (the data travels in split.csv)."""
    raw = run.config().to_dict()
    data = raw["data"]
    data["train"] = [Path(p).name for p in data.get("train") or []]
    data["class_files"] = [[c, Path(p).name] for c, p in data.get("class_files") or []]
    if data.get("test"):
        data["test"] = Path(data["test"]).name
    for record in (raw.get("provenance") or {}).get("data", {}).get("files", []):
        record.pop("path", None)
    model = raw.get("model") or ""
    if Path(model).is_absolute() or Path(model).expanduser().is_dir():
        raw["model"] = Path(model).name  # a server folder: only its name means anything elsewhere
    return raw


def _server_prefixes(run: RunDir) -> list[str]:
    """Absolute folders of this server that file contents may mention, longest first."""
    from plmcore.models import data_home

    found = {str(run.path.resolve().parent), str(Path.home()), str(Path.cwd()), str(data_home())}
    try:
        cfg = run.config()
        for p in (*cfg.data.train, *(p for _, p in cfg.data.class_files), cfg.data.test, cfg.model):
            if p and Path(p).is_absolute():
                found.add(str(Path(p).parent))
    except RunError:
        pass
    return sorted((p for p in found if len(p) > 1), key=len, reverse=True)


def _scrub(text: str, prefixes: list[str]) -> str:
    for prefix in prefixes:
        text = text.replace(prefix + "/", "")
    return text


# --------------------------------------------------------------------------- import


@dataclass
class Imported:
    """An imported run and what was changed on the way in."""

    run: RunDir
    notes: list[str] = field(default_factory=list)


def import_zip(data: bytes | Path | str, root: Path | str | None = None) -> Imported:
    """Check an archive made by `export_zip`, then unpack it as a new run under `root`.

    Raises:
        ArchiveError: the archive is unsafe, too large or not a run; nothing was written.
    """
    source = io.BytesIO(data) if isinstance(data, (bytes, bytearray)) else Path(data)
    try:
        zf = zipfile.ZipFile(source)
    except (zipfile.BadZipFile, OSError) as exc:
        raise _refuse("the file is not a zip archive; export a run from the Runs page and import that") from exc
    with zf:
        top, members = _check_archive(zf)
        root = runs_root(root)
        staged = staging_dir(root)
        try:
            _unpack(zf, members, staged)
            notes = _validate_unpacked(staged)
            final = fresh_name(root, top, stamp=False)
            staged.rename(final)
        except BaseException:
            shutil.rmtree(staged, ignore_errors=True)
            raise
    run = RunDir(final)
    if final.name != top:
        notes.append(f"A run named {top} exists already, so this one was imported as {final.name}.")
    return Imported(run, notes)


def _refuse(reason: str) -> ArchiveError:
    return ArchiveError(f"Refused: {reason}. Nothing was imported.")


def _check_archive(zf: zipfile.ZipFile) -> tuple[str, list[tuple[zipfile.ZipInfo, str]]]:
    """Every check that needs no writing: names, types, sizes, count. Returns (top folder, files)."""
    cap = limits()
    infos = zf.infolist()
    if len(infos) > cap.archive_members:
        raise _refuse(f"the archive has {len(infos):,} entries; a run has at most {len(RUN_FILES)} files "
                      f"(limit {cap.archive_members:,}, PLMCORE_MAX_ARCHIVE_MEMBERS)")
    tops, seen, members, total = set(), set(), [], 0
    for info in infos:
        name = info.filename
        parts = _safe_parts(name)
        kind = stat.S_IFMT(info.external_attr >> 16)
        if kind and kind not in (stat.S_IFREG, stat.S_IFDIR):
            what = "a symbolic link" if kind == stat.S_IFLNK else "a special file"
            raise _refuse(f"the entry {name!r} is {what}; a run archive holds plain files only")
        if len(parts) < 2 and not info.is_dir():
            raise _refuse(f"the entry {name!r} is not inside a run folder (expected <run>/config.json at the top)")
        tops.add(parts[0])
        rel = "/".join(parts[1:])
        if info.is_dir():
            if rel and rel not in _RUN_FOLDERS:
                raise _not_run_file(name, rel)
            continue
        if rel not in RUN_FILES:
            raise _not_run_file(name, rel)
        if rel in seen:
            raise _refuse(f"the file {rel!r} appears twice in the archive")
        seen.add(rel)
        if info.file_size > MiB and info.file_size > cap.archive_ratio * max(info.compress_size, 1):
            raise _refuse(f"{name!r} would inflate {info.file_size / max(info.compress_size, 1):,.0f}-fold "
                          f"(limit {cap.archive_ratio}, PLMCORE_MAX_ARCHIVE_RATIO), the mark of a zip bomb")
        total += info.file_size
        members.append((info, rel))
    if total > cap.archive_bytes:
        raise _refuse(f"the archive would unpack to {total / MiB:,.0f} MiB (limit {cap.archive_bytes / MiB:,.0f} MiB, "
                      "PLMCORE_MAX_ARCHIVE_MB)")
    if len(tops) != 1:
        raise _refuse(f"the archive holds {len(tops)} top folders ({', '.join(sorted(tops)[:3])}); an exported run "
                      "has exactly one")
    if "config.json" not in seen:
        raise _refuse("the archive holds no run (expected <run>/config.json at its top level)")
    return tops.pop(), members


def _safe_parts(name: str) -> list[str]:
    if not name or len(name) > _MAX_PATH:
        raise _refuse(f"an entry name is empty or longer than {_MAX_PATH} characters ({name[:40]!r}...)")
    if "\\" in name or name.startswith("/") or _DRIVE.match(name) or any(ord(c) < 32 for c in name):
        raise _refuse(f"the entry {name!r} has an absolute path, a drive letter, a backslash or a control character")
    parts = name.rstrip("/").split("/")
    if any(p in ("", ".", "..") for p in parts):
        raise _refuse(f"the entry {name!r} has an empty, '.' or '..' path component")
    if any(len(p) > _MAX_PART for p in parts):
        raise _refuse(f"the entry {name[:60]!r}... has a name longer than {_MAX_PART} characters")
    return parts


def _not_run_file(name: str, rel: str) -> ArchiveError:
    if rel.split("/")[0] == "checkpoint":
        return _refuse(f"the archive holds a training checkpoint ({name!r}). Checkpoints carry optimiser state "
                       "and are never imported; export the run again from this app (exports leave it out)")
    return _refuse(f"{name!r} is not a file of a run (allowed: {', '.join(RUN_FILES)})")


def _unpack(zf: zipfile.ZipFile, members: list[tuple[zipfile.ZipInfo, str]], dest: Path) -> None:
    """Stream each entry to `dest`, never writing more than its declared size."""
    budget = limits().archive_bytes
    for info, rel in members:
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        written = 0
        try:
            with zf.open(info) as src, target.open("wb") as out:
                while chunk := src.read(_CHUNK):
                    written += len(chunk)
                    budget -= len(chunk)
                    if written > info.file_size or budget < 0:
                        raise _refuse(f"{info.filename!r} inflates beyond its declared size of {info.file_size:,} "
                                      "bytes")
                    out.write(chunk)
        except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError) as exc:
            raise _refuse(f"{info.filename!r} is corrupt or inflates beyond its declared size ({exc})") from exc


def _validate_unpacked(folder: Path) -> list[str]:
    """config.json, labels.json, status.json and the reports against the engine's schemas."""
    from plmcore.config import TrainConfig

    notes = []
    try:
        raw = json.loads((folder / "config.json").read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _refuse(f"config.json is not valid JSON ({exc})") from exc
    if not isinstance(raw, dict):
        raise _refuse(f"config.json holds {type(raw).__name__}, not the settings of a run")
    if raw.pop("trust_remote_code", False):
        notes.append("The archive asked to run the model's own code (trust_remote_code); that is never taken "
                     "from a file, so it was dropped.")
    try:
        config = TrainConfig.from_dict(raw)
    except (ConfigError, TypeError, ValueError) as exc:
        raise _refuse(f"config.json does not hold valid settings ({exc})") from exc
    config.save(folder / "config.json")
    for name in RUN_FILES:
        path = folder / name
        if not name.endswith(".json") or name == "config.json" or not path.exists():
            continue
        try:
            value = json.loads(path.read_text())
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise _refuse(f"{name} is not valid JSON ({exc})") from exc
        try:
            if name == "labels.json":
                check_labels(value)
            elif name == "about.json":
                write_json(path, check_about(value))
            elif name == "status.json":
                status = check_status(value)
                if status.get("state") in ACTIVE_STATES:
                    status.update(state="failed", pid=None,
                                  error="imported while it was still running; only its files came along")
                    write_json(path, status)
            elif not isinstance(value, dict):
                raise RunError(f"{name} holds {type(value).__name__}, not a JSON object")
        except RunError as exc:
            raise _refuse(str(exc)) from exc
    return notes
