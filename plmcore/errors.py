"""Exception types. Every message says what was wrong, where, and how to fix it."""

from __future__ import annotations

import errno
import re
from collections.abc import Iterator
from contextlib import contextmanager

# "{sequence_column}" in a message names a setting; it is shown as the CLI flag (--sequence-column)
# or as the app's widget, from the setting's declaration (plmcore.config: flag and widget).
_SETTING = re.compile(r"\{([a-z_]+)\}")


def setting_name(name: str, where: str = "cli") -> str | None:
    """How a setting is named to a user of `where` ("cli" or "app"); None for an unknown name."""
    from plmcore import config

    for cls in (config.DataSpec, config.TrainConfig):
        try:
            s = config.spec(cls, name)
        except PlmcoreError:
            continue
        if where == "app":
            return s.get("widget") or f"'{s.get('label') or name.replace('_', ' ')}'"
        return s["flag"] or "--" + name.replace("_", "-")
    return None


def render_settings(text: str, where: str = "cli") -> str:
    """`text` with each {setting} named for `where` ("cli": the flag; "app": the widget)."""
    if "{" not in text:
        return text
    return _SETTING.sub(lambda m: setting_name(m.group(1), where) or m.group(0), text)


class PlmcoreError(Exception):
    """Base class for every error plmcore raises on purpose.

    A message may name settings as {setting_name}: str(exc) shows the command-line flag,
    exc.render("app") the app's widget, so one message serves both.
    """

    def render(self, where: str = "cli") -> str:
        """The message with its settings named for `where` ("cli" or "app")."""
        return render_settings(Exception.__str__(self), where)

    def __str__(self) -> str:
        return self.render("cli")


class ConfigError(PlmcoreError, ValueError):
    """A setting has a value that is not allowed."""


class DataError(PlmcoreError, ValueError):
    """Input data cannot be used as given."""


class EmptyInputError(DataError):
    """A file is empty or holds no records."""


class InvalidSequenceError(DataError):
    """A sequence holds characters that are not amino acids."""


class LabelError(DataError):
    """A label is missing or cannot be parsed."""


class RegressionTargetError(LabelError):
    """A label column looks like a continuous (regression) target."""


class DuplicateIdError(DataError):
    """Two records share one id."""


class ConflictingLabelError(DataError):
    """Identical sequences carry different labels."""


class SingleClassError(DataError):
    """All records carry the same label, so there is nothing to learn."""


class SequenceTooLongError(DataError):
    """A sequence is longer than the model accepts."""


class ModelLoadError(PlmcoreError, OSError):
    """A model or tokenizer cannot be loaded from the hub, the cache or a folder."""


class RunError(PlmcoreError, RuntimeError):
    """A run directory is missing, incomplete or in the wrong state."""


class InputTooLargeError(DataError):
    """A file, table or record passes one of the limits declared in plmcore.limits."""


class StorageError(PlmcoreError, OSError):
    """A file cannot be written: the disk is full, or the folder is read-only or not writable."""

    @classmethod
    def from_os_error(cls, exc: OSError, doing: str, folder: object, setting: str) -> StorageError:
        """Explain `exc`, raised while `doing` something in `folder`; `setting` names a writable alternative."""
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            why = f"the disk holding {folder} is full (or your quota there is used up)"
            fix = f"Free some space there, or set {setting} to a folder on a disk with room, then try again."
        elif exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
            why = f"{folder} is read-only or not writable by this server"
            fix = f"Set {setting} to a folder this server may write to, then try again."
        else:
            why = f"writing in {folder} failed"
            fix = f"Check that {folder} is on a working disk, or set {setting} to another folder, then try again."
        return cls(f"Cannot {doing}: {why} ({exc.strerror or exc}). {fix} Data saved earlier is unchanged.")


@contextmanager
def explain_os_errors(doing: str, folder: object, setting: str) -> Iterator[None]:
    """Turn an OSError raised inside into a StorageError that says what to do (see from_os_error)."""
    try:
        yield
    except OSError as exc:
        if isinstance(exc, PlmcoreError):
            raise
        raise StorageError.from_os_error(exc, doing, folder, setting) from exc


class ArchiveError(RunError):
    """A run archive is refused: unsafe, too large, or not a run exported by this app."""
