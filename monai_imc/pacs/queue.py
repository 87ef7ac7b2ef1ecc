"""The durable work queue of ``monai-imc serve``: one SQLite row per study, beside the output.

A study moves ``receiving -> ready -> processing -> processed -> done`` (or ``failed``). Every change is one
committed transaction (WAL, ``synchronous=FULL``), so a service killed at any point restarts where it stopped:
a study caught in ``processing`` goes back to ``ready`` (its SRs were not recorded, so it is redone; the SR
UIDs are deterministic, so the PACS gets the same SRs), a study ``processed`` but not delivered is delivered
again (same UIDs: the PACS replaces, it does not duplicate). A study recorded ``processed`` is never
processed again, unless new instances of it arrive (a late instance reopens it: ``generation`` counts these).

Rows hold the Study Instance UID and counts, never a patient name or ID; a study's folder is named by a hash
of its UID.

Usage::

    queue = WorkQueue("out/imc_queue.sqlite")
    queue.record_instance(study_uid, now)
    queue.promote_quiet(now, quiet_seconds=10)
    job = queue.claim()
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

__all__ = ["QUEUE_FILE", "Job", "WorkQueue", "study_key"]

QUEUE_FILE = "imc_queue.sqlite"
"""The queue's file name in the output folder."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS studies (
    key TEXT PRIMARY KEY,
    study_uid TEXT NOT NULL UNIQUE,
    source TEXT NOT NULL,
    state TEXT NOT NULL,
    generation INTEGER NOT NULL DEFAULT 0,
    instances INTEGER NOT NULL DEFAULT 0,
    last_received REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt REAL NOT NULL DEFAULT 0,
    last_error TEXT NOT NULL DEFAULT '',
    srs TEXT NOT NULL DEFAULT '[]',
    processed_times INTEGER NOT NULL DEFAULT 0,
    delivered_times INTEGER NOT NULL DEFAULT 0,
    updated REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS studies_state ON studies(state);
"""

ACTIVE = ("receiving", "ready", "processing", "processed")
"""States of a study that still has work to do."""


def study_key(study_uid: str) -> str:
    """The study's folder name: a short hash of its Study Instance UID."""
    return hashlib.sha256(study_uid.encode("ascii", "replace")).hexdigest()[:24]


@dataclass(frozen=True)
class Job:
    """One study to process or deliver.

    Attributes:
        key: the folder name of the study.
        study_uid: its Study Instance UID.
        generation: the generation claimed (a late instance makes a newer one).
        attempts: failed tries so far.
        srs: the SR files to deliver (delivery jobs).
    """

    key: str
    study_uid: str
    generation: int
    attempts: int
    srs: tuple[str, ...] = ()


class WorkQueue:
    """The SQLite queue (thread-safe: the listener's threads and the worker share it).

    Args:
        path: the database file (created with its folder).
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def recover(self) -> int:
        """After a restart: studies caught in ``processing`` are ``ready`` again; returns how many."""
        with self._tx() as db:
            return db.execute(
                "UPDATE studies SET state='ready', updated=? WHERE state='processing'", (time.time(),)
            ).rowcount

    def known(self, study_uid: str) -> bool:
        """Whether the study has a row (in any state)."""
        with self._lock:
            row = self._db.execute("SELECT 1 FROM studies WHERE study_uid=?", (study_uid,)).fetchone()
        return row is not None

    def pending(self) -> int:
        """Studies with work left."""
        with self._lock:
            (count,) = self._db.execute(
                f"SELECT COUNT(*) FROM studies WHERE state IN ({','.join('?' * len(ACTIVE))})", ACTIVE
            ).fetchone()
        return int(count)

    def record_instance(self, study_uid: str, now: float, source: str = "cstore") -> str:
        """One instance of a study was stored (its file is on disk): the study is ``receiving`` (a study
        already processed is reopened, with a new generation). Returns the study key."""
        key = study_key(study_uid)
        with self._tx() as db:
            row = db.execute("SELECT state FROM studies WHERE key=?", (key,)).fetchone()
            if row is None:
                db.execute(
                    "INSERT INTO studies (key, study_uid, source, state, instances, last_received, updated) "
                    "VALUES (?, ?, ?, 'receiving', 1, ?, ?)",
                    (key, study_uid, source, now, now),
                )
            else:
                bump = 0 if row[0] == "receiving" else 1
                db.execute(
                    "UPDATE studies SET state='receiving', instances=instances+1, last_received=?, "
                    "generation=generation+?, attempts=0, next_attempt=0, updated=? WHERE key=?",
                    (now, bump, now, key),
                )
        return key

    def record_pulled(self, study_uid: str, instances: int, now: float) -> str:
        """A study retrieved whole (DICOMweb): it is ``ready`` at once. Returns the study key."""
        key = study_key(study_uid)
        with self._tx() as db:
            db.execute(
                "INSERT OR IGNORE INTO studies (key, study_uid, source, state, instances, last_received, "
                "updated) VALUES (?, ?, 'dicomweb', 'ready', ?, ?, ?)",
                (key, study_uid, instances, now, now),
            )
        return key

    def promote_quiet(self, now: float, quiet_seconds: float) -> list[str]:
        """Studies quiet for ``quiet_seconds`` become ``ready``; returns their keys."""
        with self._tx() as db:
            keys = [
                k
                for (k,) in db.execute(
                    "SELECT key FROM studies WHERE state='receiving' AND last_received<=?",
                    (now - quiet_seconds,),
                )
            ]
            db.executemany(
                "UPDATE studies SET state='ready', updated=? WHERE key=?", [(now, k) for k in keys]
            )
        return keys

    def claim(self, now: float | None = None) -> Job | None:
        """The oldest ``ready`` study whose retry time has come, now ``processing``."""
        now = time.time() if now is None else now
        with self._tx() as db:
            row = db.execute(
                "SELECT key, study_uid, generation, attempts FROM studies WHERE state='ready' "
                "AND next_attempt<=? ORDER BY last_received LIMIT 1",
                (now,),
            ).fetchone()
            if row is None:
                return None
            db.execute("UPDATE studies SET state='processing', updated=? WHERE key=?", (now, row[0]))
        return Job(row[0], row[1], row[2], row[3])

    def processed(self, job: Job, srs: Sequence[str], note: str = "") -> bool:
        """The study's SRs are written: ``processed`` (``done`` when there is nothing to deliver). A study
        reopened meanwhile (newer generation) stays to be redone; returns whether the result was kept."""
        now = time.time()
        state = "processed" if srs else "done"
        with self._tx() as db:
            return (
                db.execute(
                    "UPDATE studies SET state=?, srs=?, attempts=0, next_attempt=0, last_error=?, "
                    "processed_times=processed_times+1, updated=? WHERE key=? AND generation=? "
                    "AND state='processing'",
                    (state, json.dumps(list(srs)), note, now, job.key, job.generation),
                ).rowcount
                == 1
            )

    def processing_failed(self, job: Job, error: str, delay: float, max_attempts: int) -> str:
        """Processing raised: ``ready`` again after ``delay`` seconds, or ``failed`` after ``max_attempts``
        tries. Returns the new state."""
        now = time.time()
        attempts = job.attempts + 1
        state = "failed" if attempts >= max_attempts else "ready"
        with self._tx() as db:
            db.execute(
                "UPDATE studies SET state=?, attempts=?, next_attempt=?, last_error=?, updated=? "
                "WHERE key=? AND generation=? AND state='processing'",
                (state, attempts, now + delay, error, now, job.key, job.generation),
            )
        return state

    def claim_delivery(self, now: float | None = None) -> Job | None:
        """The oldest ``processed`` study whose retry time has come (it stays ``processed`` until
        :meth:`delivered`)."""
        now = time.time() if now is None else now
        with self._lock:
            row = self._db.execute(
                "SELECT key, study_uid, generation, attempts, srs FROM studies WHERE state='processed' "
                "AND next_attempt<=? ORDER BY updated LIMIT 1",
                (now,),
            ).fetchone()
        if row is None:
            return None
        return Job(row[0], row[1], row[2], row[3], tuple(json.loads(row[4])))

    def delivered(self, job: Job) -> None:
        """The SRs are stored at the destination: ``done``."""
        with self._tx() as db:
            db.execute(
                "UPDATE studies SET state='done', last_error='', delivered_times=delivered_times+1, "
                "updated=? WHERE key=? AND generation=? AND state='processed'",
                (time.time(), job.key, job.generation),
            )

    def delivery_failed(self, job: Job, error: str, delay: float) -> None:
        """The destination did not store every SR: try again after ``delay`` seconds."""
        now = time.time()
        with self._tx() as db:
            db.execute(
                "UPDATE studies SET attempts=attempts+1, next_attempt=?, last_error=?, updated=? "
                "WHERE key=? AND generation=? AND state='processed'",
                (now + delay, error, now, job.key, job.generation),
            )

    def next_due(self) -> float | None:
        """The earliest retry time of a waiting study (``None``: none waits)."""
        with self._lock:
            (due,) = self._db.execute(
                "SELECT MIN(next_attempt) FROM studies WHERE state IN ('ready', 'processed')"
            ).fetchone()
        return None if due is None else float(due)

    def rows(self) -> list[dict[str, object]]:
        """Every study's row, for reports and tests."""
        with self._lock:
            cursor = self._db.execute("SELECT * FROM studies ORDER BY last_received")
            names = [d[0] for d in cursor.description]
            return [dict(zip(names, row)) for row in cursor.fetchall()]
