"""The data folder on disk: where it is, and the SHA-256 digests kept beside its files (a leaf module)."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

DATA_ENV = "DLMNIST_DATA"
FILE_MODE = 0o644


def data_dir(given: str | Path | None = None) -> Path:
    """The data folder: ``given`` (``--data.data_dir``), else ``$DLMNIST_DATA``, else, when dlmnist runs from its
    source checkout (``make install``'s editable install), that checkout's ``data/`` once ``make data`` made it,
    else the per-user cache folder (``~/.cache/dlmnist`` on Linux): a run from any folder finds the files
    fetched once."""
    if given:
        return Path(given)
    if os.environ.get(DATA_ENV):
        return Path(os.environ[DATA_ENV])
    checkout = Path(__file__).resolve().parents[2]
    if (checkout / "pyproject.toml").is_file() and (checkout / "data").is_dir():
        return checkout / "data"
    import platformdirs

    return Path(platformdirs.user_cache_dir("dlmnist", appauthor=False))


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


DIGESTS = ".sha256.json"  # beside the files: {name: [size, mtime_ns, inode, sha256]} of files verified in place


def known_sha256(path: Path) -> str:
    """The SHA-256 of a file in the data folder, hashed once per version of the file: the digest is kept in
    ``.sha256.json`` beside it with the file's size, modification time and inode, and hashed again when any of
    them changed. Every training process verifies the files; this spares each one hashing 55 MB again."""
    stat = path.stat()
    stamp = [stat.st_size, stat.st_mtime_ns, stat.st_ino]
    book = path.parent / DIGESTS
    try:
        known = json.loads(book.read_text())
    except (OSError, ValueError):
        known = {}
    entry = known.get(path.name)
    if isinstance(entry, list) and entry[:3] == stamp:
        return entry[3]
    digest = sha256(path)
    known[path.name] = [*stamp, digest]
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{DIGESTS}.", suffix=".partial", dir=path.parent)
        with os.fdopen(fd, "w") as f:
            json.dump(known, f)
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, book)
    except OSError:  # a read-only data folder: hash every time
        pass
    return digest
