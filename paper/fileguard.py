"""Open a state file safely: refuse one that is not ours, not whole, or of an unknown version.

Checks run before anything is written to the file (setting WAL mode or migrating would
modify a foreign file): the SQLite header, the size the header promises against the bytes
on disk (a torn copy or a truncated file), SQLite's own ``integrity_check`` and
``foreign_key_check``, the ``application_id``, the schema version and the ``meta`` row.
`connect` never creates a file; `configure` sets WAL, ``synchronous=FULL`` and foreign keys.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from urllib.parse import quote

from paper.errors import StateFileError
from paper.schema import APPLICATION_ID, APPLICATION_NAME, SCHEMA_VERSION

SQLITE_MAGIC = b"SQLite format 3\x00"
HEADER_BYTES = 100


def check_header(path: Path) -> None:
    """The file exists, is a SQLite database, and is at least as long as its header says."""
    if not path.exists():
        raise StateFileError(f"{path}: no such state file")
    if not path.is_file():
        raise StateFileError(f"{path}: not a regular file")
    size = path.stat().st_size
    if size == 0:
        raise StateFileError(f"{path}: empty file (0 bytes): not a state file (was its creation interrupted?)")
    with path.open("rb") as f:
        header = f.read(HEADER_BYTES)
    if len(header) < HEADER_BYTES or header[:16] != SQLITE_MAGIC:
        raise StateFileError(
            f"{path}: foreign file: not a SQLite database (first bytes {header[:16]!r}, {size} bytes)"
        )
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    if page_size < 512 or page_size & (page_size - 1):
        raise StateFileError(f"{path}: corrupted header: page size {page_size} is not a power of two >= 512")
    n_pages = int.from_bytes(header[28:32], "big")
    size_valid = header[24:28] == header[92:96]  # the in-header size is valid only when these agree
    wal = Path(f"{path}-wal")
    wal_pending = wal.exists() and wal.stat().st_size > 0  # committed pages may still live in the WAL
    if size % page_size:
        raise StateFileError(f"{path}: truncated or torn: {size} bytes is not a whole number of {page_size}-byte pages")
    if size_valid and not wal_pending and n_pages * page_size > size:
        raise StateFileError(
            f"{path}: truncated: the header says {n_pages} pages × {page_size} bytes = {n_pages * page_size} bytes, "
            f"the file has {size}"
        )


def identify(conn: sqlite3.Connection, path: Path, *, quick: bool = False) -> int:
    """Check identity and integrity of an open connection; return the file's schema version."""
    try:
        app_id = conn.execute("PRAGMA application_id").fetchone()[0]
        version = conn.execute("PRAGMA user_version").fetchone()[0]
    except sqlite3.DatabaseError as exc:
        raise StateFileError(f"{path}: corrupted or not a database: {exc}") from None
    if app_id != APPLICATION_ID:
        raise StateFileError(
            f"{path}: foreign file: SQLite application_id is {app_id:#x}, expected {APPLICATION_ID:#x} "
            f"({APPLICATION_NAME} state); refusing to use or modify it"
        )
    if version > SCHEMA_VERSION:
        raise StateFileError(
            f"{path}: schema version {version} is newer than this code knows ({SCHEMA_VERSION}); "
            "upgrade krakenrl, do not open it with this version"
        )
    if version < 1:
        raise StateFileError(f"{path}: schema version {version}: the file was never fully created")
    try:
        check = "quick_check" if quick else "integrity_check"
        rows = [r[0] for r in conn.execute(f"PRAGMA {check}").fetchall()]
        if rows != ["ok"]:
            raise StateFileError(f"{path}: corrupted: PRAGMA {check} reports {'; '.join(map(str, rows[:5]))}")
        bad_fk = conn.execute("PRAGMA foreign_key_check").fetchall()
        if bad_fk:
            raise StateFileError(f"{path}: corrupted: {len(bad_fk)} broken foreign key(s), first {tuple(bad_fk[0])}")
        meta = conn.execute("SELECT application, schema_version FROM meta WHERE id = 1").fetchone()
    except sqlite3.DatabaseError as exc:
        raise StateFileError(f"{path}: corrupted: {exc}") from None
    if meta is None:
        raise StateFileError(f"{path}: corrupted: the meta table has no row")
    if meta[0] != APPLICATION_NAME or meta[1] != version:
        raise StateFileError(
            f"{path}: corrupted: meta says application {meta[0]!r} schema {meta[1]}, "
            f"the header says {APPLICATION_NAME!r} schema {version}"
        )
    return int(version)


def fsync_path(path: Path) -> None:
    """Flush a file or directory to disk (a rename/link is durable only once its directory is)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def connect(path: Path, *, readonly: bool) -> sqlite3.Connection:
    """A connection that never creates the file (``mode=rw``/``ro``)."""
    uri = f"file:{quote(str(path.resolve()))}?mode={'ro' if readonly else 'rw'}"
    try:
        conn = sqlite3.connect(uri, uri=True, isolation_level=None, timeout=10.0)
    except sqlite3.Error as exc:
        raise StateFileError(f"{path}: cannot open: {exc}") from None
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("PRAGMA cell_size_check = ON")
    conn.execute("PRAGMA trusted_schema = OFF")
    return conn


def configure(conn: sqlite3.Connection, path: Path, *, writable: bool) -> None:
    """WAL journal, full fsync on every commit, foreign keys enforced."""
    conn.execute("PRAGMA foreign_keys = ON")
    if writable:
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise StateFileError(f"{path}: cannot use WAL journal mode here (got {mode!r})")
    conn.execute("PRAGMA synchronous = FULL")
