"""Exception types. Every message says what was wrong, where, and how to fix it."""

from __future__ import annotations


class PlmcoreError(Exception):
    """Base class for every error plmcore raises on purpose."""


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


class StorageError(PlmcoreError, OSError):
    """The workspace cannot be written: full disk, read-only folder or no permission."""


class ArchiveError(RunError):
    """A run archive is refused: unsafe, too large, or not a run exported by this app."""
