"""The errors a user can cause and fix: one base class, caught by every `lvm-jax` command.

A `UserError` carries a message that names what is wrong (the file, the column, the index, the
config key) and what to do; `lvm-jax` prints it on one line as `lvm-jax COMMAND: error: ...`
and exits with status 2, without a traceback (`--debug` or `LVM_JAX_DEBUG=1` shows it).
Everything else (a bug, an out-of-memory) keeps its traceback.

| class | raised for |
| --- | --- |
| `UserError` | the base; also bad command-line values |
| `ConfigError` | an unknown config key or preset, a value of the wrong type or out of range |
| `CheckpointError` | a checkpoint item that is missing, truncated or fails its SHA-256 digest |
| `ResumeError` | resuming a workdir with a config that differs in a field that may not change |
| `LockedError` | a folder (export, workdir, label store) that another live process is writing |
| `ReaderError` | a data file whose column has the wrong type or whose images are not float flux |
| `BadImageError`, `UnreadableFileError` | one image that cannot be used (quarantined by runs) |
"""

from __future__ import annotations


class UserError(Exception):
  """A mistake in the input or the command line; the message says what and where."""


class ConfigError(UserError, ValueError):
  """A config key, preset or value that cannot be used."""


class CheckpointError(UserError):
  """A checkpoint step that cannot be restored as saved: `directory`, `step`, `item` named."""

  def __init__(self, message: str, *, directory: str = "", step: int | None = None,
               item: str | None = None):
    super().__init__(message)
    self.directory = directory
    self.step = step
    self.item = item


class ResumeError(UserError, ValueError):
  """A workdir's saved config differs from the new one in fields that may not change."""


class LockedError(UserError):
  """Another live process holds the lock of a folder or file this command would write."""


class ReaderError(UserError, ValueError):
  """A data file that does not have the expected layout: file, column (and index) named."""


class NoCheckpointError(UserError, FileNotFoundError):
  """A directory without any checkpoint step."""
