"""What differs between runs, in words: the settings diff under the Runs page's comparison (no Streamlit here)."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

from plmcore.config import DataSpec, TrainConfig, spec

# recorded for the record, not a setting a person chose
_SKIPPED = {"provenance"}


def setting_words(cls, name: str, value) -> str:
    """One setting's value as the app's widgets say it: a choice in its declared words, a switch as
    yes/no, None as what None means there, file lists by file name."""
    s = spec(cls, name)
    if value is None:
        return s.get("none") or "none"
    if s["values"] is not None:
        return (s.get("choices") or {}).get(value, str(value))
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (tuple, list)):
        return ", ".join("=".join(Path(str(p)).name for p in v) if isinstance(v, (tuple, list)) else Path(str(v)).name
                         for v in value) or "none"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _label(cls, name: str) -> str:
    s = spec(cls, name)
    return s.get("label") or name.replace("_", " ").capitalize()


def settings_diff(configs: dict[str, TrainConfig]) -> list[dict[str, str]]:
    """The settings that differ between runs, one row each: {'setting': label, <run>: value in words, ...}.

    Args:
        configs: {what to call the run: its TrainConfig}; with fewer than two runs nothing differs.
    """
    if len(configs) < 2:
        return []
    rows = []
    for cls, get in ((TrainConfig, lambda c: c), (DataSpec, lambda c: c.data)):
        for f in fields(cls):
            if f.name in _SKIPPED or f.name == "data":
                continue
            values = {run: getattr(get(c), f.name) for run, c in configs.items()}
            if len({repr(v) for v in values.values()}) < 2:
                continue
            rows.append({"setting": _label(cls, f.name),
                         **{run: setting_words(cls, f.name, v) for run, v in values.items()}})
    return rows
