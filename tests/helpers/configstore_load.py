#!/usr/bin/env python3
"""A stand-in for hostd writing ConfigStore, and the independent check of a snapshot, with
python3's own sqlite3 module. Used by tests/integration/configstore.rs.

  configstore_load.py create DB [JOURNAL_MODE]   a store with table rows(id, value)
  configstore_load.py write DB LOG               commit one row per transaction, forever;
                                                 after each commit the id goes to LOG
  configstore_load.py check DB                   PRAGMA integrity_check, then prints the
                                                 row count and the highest id; exit 1 unless
                                                 the ids are exactly 1..count (a prefix)
"""
import os
import sqlite3
import sys


def create(db, mode="delete"):
    con = sqlite3.connect(db)
    con.execute(f"PRAGMA journal_mode = {mode}")
    con.execute("CREATE TABLE rows (id INTEGER PRIMARY KEY, value TEXT NOT NULL)")
    con.execute("CREATE INDEX rows_value ON rows (value)")
    con.commit()
    con.close()


def write(db, log):
    con = sqlite3.connect(db, timeout=30, isolation_level=None)
    last = con.execute("SELECT coalesce(max(id), 0) FROM rows").fetchone()[0]
    with open(log, "a", buffering=1) as out:
        while True:
            last += 1
            con.execute("BEGIN IMMEDIATE")
            # Several pages a commit, so a torn copy would show.
            con.execute("INSERT INTO rows VALUES (?, ?)", (last, f"{last:08d}" + "x" * 3000))
            con.execute("COMMIT")
            out.write(f"{last}\n")
            os.fsync(out.fileno())


def check(db):
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    verdict = con.execute("PRAGMA integrity_check").fetchone()[0]
    if verdict != "ok":
        sys.exit(f"integrity_check: {verdict}")
    count, top = con.execute("SELECT count(*), coalesce(max(id), 0) FROM rows").fetchone()
    if count != top:
        sys.exit(f"not a prefix: {count} rows, highest id {top}")
    print(count, top)


if __name__ == "__main__":
    command, args = sys.argv[1], sys.argv[2:]
    {"create": create, "write": write, "check": check}[command](*args)
