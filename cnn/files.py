"""File primitives the model formats share: a file written all or nothing,
and a zip archive whose directory is checked against the file's bytes.

Nothing here knows about models: it imports no part of the engine but its
errors and limits, so :mod:`cnn.io` (the engine's ``.npz``), :mod:`cnn.keras_io`
(Keras's ``.keras`` and ``.weights.h5``), the data and picture writers all
stand on it without importing each other.
"""
import os
import stat
import tempfile
import threading
import zipfile
from pathlib import Path

from .errors import InputError, ModelFileError
from .limits import MAX_DEFLATE_RATIO, MAX_LAYERS

TEMPORARY_SUFFIX = ".tmp"


def _temporary_prefix(path):
    return f".{path.name}."


def _remove_abandoned_temporaries(path):
    """Delete temporary files of earlier saves to ``path`` whose process is
    gone (killed mid-save). A live process's temporary, another save still
    running, is left alone."""
    prefix = _temporary_prefix(path)
    try:
        names = os.listdir(path.parent or ".")
    except OSError:
        return
    for name in names:
        if not (name.startswith(prefix) and name.endswith(TEMPORARY_SUFFIX)):
            continue
        pid = name[len(prefix):].split(".", 1)[0]
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            try:
                os.unlink(path.parent / name)
            except OSError:
                pass
        except OSError:
            pass  # alive, owned by someone else


_umask_lock = threading.Lock()


def _umask():
    """The process's umask, read without changing it where Linux says it
    (/proc/self/status), else set and restored at once under a lock."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    with _umask_lock:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def _plain_write_mode(path):
    """The permissions ``open(path, 'wb')`` would leave: an existing file's own,
    a new one's 0666 less the umask (mkstemp's 0600 is for the temporary only)."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        return 0o666 & ~_umask()


def atomic_write_bytes(path, payload):
    """Write ``payload`` to ``path`` all or nothing: a temporary file of its
    own beside it (its name holds the process id and a random part), flushed to
    disk, renamed into place, and the directory flushed. On any failure the old
    file, if there was one, is untouched and the temporary file is removed;
    temporaries left by a killed process are removed by the next save. The
    file ends with the permissions a plain write would give it (an existing
    file's, or 0666 less the umask)."""
    path = Path(path)
    if not path.name:
        raise InputError(f"{str(path)!r} is not a file name")
    folder = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise InputError(f"{path}: is a directory; give a file name")
    _remove_abandoned_temporaries(path)
    mode = _plain_write_mode(path)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f"{_temporary_prefix(path)}{os.getpid()}.", suffix=TEMPORARY_SUFFIX)
    try:
        os.fchmod(fd, mode)  # what a plain write would give, set before a byte is written
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    try:  # the rename itself survives a crash once the directory is on disk
        dir_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass


def open_archive(f, path, max_members=4 * MAX_LAYERS + 16):
    """A zip archive on the open file ``f``, its directory checked against the
    file: member sizes that the bytes present cannot hold are refused before
    any member is read (a zip64 entry claiming a terabyte among them)."""
    size = os.fstat(f.fileno()).st_size
    try:
        archive = zipfile.ZipFile(f)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as err:
        raise ModelFileError(f"{path}: not a readable model file: not a zip archive ({err})") from None
    infos = archive.infolist()
    if len(infos) > max_members:
        raise ModelFileError(f"{path}: {len(infos)} members, more than a model file has")
    stored = sum(info.compress_size for info in infos)
    if stored > size:
        raise ModelFileError(f"{path}: its directory claims {stored} compressed bytes in a {size}-byte file")
    for info in infos:
        bound = info.compress_size if info.compress_type == zipfile.ZIP_STORED else MAX_DEFLATE_RATIO * info.compress_size
        if info.file_size > bound + 64:
            raise ModelFileError(f"{path}: {info.filename} claims {info.file_size} bytes from "
                                 f"{info.compress_size} compressed ones")
    return archive
