"""Files written atomically: a reader sees the old file or the new one, never half of one.

Every output of the pipeline goes through here: the bytes are written to a temporary
file in the destination's directory (same file system) and moved over the destination
with :func:`os.replace` (atomic on POSIX and Windows). On an error the temporary file is
removed and the destination is left as it was.

The rename alone makes the write atomic against a crash of the process. ``fsync=True``
also flushes the data to the disk before the rename, so that a crash of the machine
right after it cannot leave an empty file (ext4's default ``auto_da_alloc`` already
covers replace-by-rename); it costs 0.3-10 ms a file on a busy disk.
"""

import contextlib
import os
import secrets
from pathlib import Path

__all__ = ["atomic_path", "temporary_name", "write_atomic"]

#: Prefix of the temporary files (hidden; the final name follows, so writers that look
#: at the extension, such as astropy's FITS writer with ``.fits.gz``, see the real one).
TEMPORARY_PREFIX = ".tmp-"


def temporary_name(path):
    """A fresh temporary path beside ``path``: ``<dir>/.tmp-<random>-<name>``.

    Parameters
    ----------
    path : str or `~pathlib.Path`
        The destination.

    Returns
    -------
    temporary : `~pathlib.Path`
        A path in the same directory that does not exist yet.
    """
    path = Path(path)
    return path.with_name(f"{TEMPORARY_PREFIX}{secrets.token_hex(6)}-{path.name}")


def _fsync(path):
    """Flush a file's data to the disk (so that a crash after the rename keeps it)."""
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def _remove_quietly(path):
    with contextlib.suppress(FileNotFoundError):
        os.remove(path)


@contextlib.contextmanager
def atomic_path(path, fsync=False):
    """Yield a temporary path to write; move it onto ``path`` when the block succeeds.

    For writers that want a file name (astropy's ``Table.write``, gammapy's
    ``Map.write``): write to the yielded path; on leaving the block without an error the
    file is flushed to disk and renamed onto ``path``; on an error it is removed and
    ``path`` is untouched.

    Parameters
    ----------
    path : str or `~pathlib.Path`
        The destination. Its directory must exist.
    fsync : bool
        Flush the file to the disk before the rename (see the module docstring).

    Yields
    ------
    temporary : `~pathlib.Path`
        Where to write (in the same directory; it does not exist yet).

    Raises
    ------
    FileNotFoundError
        When the directory of ``path`` does not exist, or the block wrote no file.
    """
    path = Path(path)
    if not path.parent.is_dir():
        raise FileNotFoundError(f"{path}: directory {path.parent} does not exist")
    temporary = temporary_name(path)
    try:
        yield temporary
        if not temporary.exists():
            raise FileNotFoundError(f"{path}: the writer did not create {temporary.name}")
        if fsync:
            _fsync(temporary)
        os.replace(temporary, path)
    except BaseException:
        _remove_quietly(temporary)
        raise


def write_atomic(path, data, fsync=False):
    """Write ``data`` to ``path`` atomically.

    Parameters
    ----------
    path : str or `~pathlib.Path`
        The destination. Its directory must exist.
    data : bytes or str
        The whole content; a str is encoded as UTF-8.
    fsync : bool
        Flush the file to the disk before the rename (see the module docstring).

    Raises
    ------
    TypeError
        When ``data`` is neither bytes nor str.
    """
    if isinstance(data, str):
        data = data.encode("utf-8")
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"{path}: data must be bytes or str, got {type(data).__name__}")
    with atomic_path(path, fsync=fsync) as temporary:
        with open(temporary, "xb") as handle:
            handle.write(data)
