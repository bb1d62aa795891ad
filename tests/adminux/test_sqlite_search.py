"""Case-insensitive Cyrillic search on SQLite, as on PostgreSQL (tested on a SQLite connection
of its own, whatever database the run uses)."""

from __future__ import annotations

import sqlite3

from watcher.sqlite import unicode_like


def test_like_folds_cyrillic_case_on_sqlite() -> None:
    db = sqlite3.connect(":memory:")
    db.create_function("like", 2, unicode_like, deterministic=True)
    db.create_function("like", 3, unicode_like, deterministic=True)
    db.execute("CREATE TABLE t (title TEXT)")
    db.executemany("INSERT INTO t VALUES (?)", [("Плед флисовый",), ("Подушка",), ("50%_off",)])

    def search(pattern: str) -> list[str]:
        rows = db.execute(r"SELECT title FROM t WHERE title LIKE ? ESCAPE '\'", (pattern,))
        return [row[0] for row in rows]

    assert search("%плед%") == ["Плед флисовый"]
    assert search("%ФЛИС%") == ["Плед флисовый"]
    assert search(r"%50\%\_%") == ["50%_off"]  # Django escapes % and _ in search terms
    assert search("%нет такого%") == []
