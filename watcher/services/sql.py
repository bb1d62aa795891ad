"""Hand-written SQL for the hottest statements of the agent API (``tasks/next``, ``report``).

The ORM compiles every query anew, which costs more CPU than PostgreSQL spends running a
primary-key lookup (bench/dispatch.py measured 2.2 ms of CPU for ``filter().first()`` against
0.9 ms for the same row through ``Model.objects.raw``). The statements here are built from
the models' metadata once per process, so table and column names follow the models, and
their rows still come back as model instances. Everything else uses the ORM.
"""

from __future__ import annotations

from functools import cache
from typing import Any, TypeVar

from django.db import connection, models

M = TypeVar("M", bound=models.Model)


def _q(name: str) -> str:
    return connection.ops.quote_name(name)


def _column(model: type[models.Model], name: str) -> str:
    return _q(model._meta.get_field(name).column)


def prep(model: type[models.Model], name: str, value: Any) -> Any:
    """``value`` as the database adapter wants it for field ``name`` of ``model``."""
    return model._meta.get_field(name).get_db_prep_save(value, connection)


@cache
def _select_one(model: type[models.Model], field: str, lock: bool, vendor: str) -> str:
    lock_clause = " FOR UPDATE" if lock and connection.features.has_select_for_update else ""
    return (
        f"SELECT * FROM {_q(model._meta.db_table)} WHERE {_column(model, field)} = %s "
        f"LIMIT 1{lock_clause}"
    )


def get_one(model: type[M], field: str, value: Any, *, lock: bool = False) -> M | None:
    """The row of ``model`` whose ``field`` equals ``value`` (one of them if several), or None.

    ``lock`` takes the row lock (``SELECT … FOR UPDATE``) where the database has one; call it
    inside ``transaction.atomic``.
    """
    sql = _select_one(model, field, lock, connection.vendor)
    rows = list(model._default_manager.raw(sql, [prep(model, field, value)]))
    return rows[0] if rows else None


def update_returning(
    model: type[M],
    values: dict[str, Any],
    where: dict[str, Any],
    increment: tuple[str, ...] = (),
) -> M | None:
    """``UPDATE … SET values, increment += 1 WHERE where… RETURNING *``: the updated row, or
    None when no row matched. One statement, so a conditional update and the read of its
    result cannot be told apart by a concurrent writer."""
    assignments = [f"{_column(model, name)} = %s" for name in values]
    assignments += [f"{_column(model, name)} = {_column(model, name)} + 1" for name in increment]
    conditions = [f"{_column(model, name)} = %s" for name in where]
    sql = (
        f"UPDATE {_q(model._meta.db_table)} SET {', '.join(assignments)} "
        f"WHERE {' AND '.join(conditions)} RETURNING *"
    )
    params = [prep(model, n, v) for n, v in values.items()]
    params += [prep(model, n, v) for n, v in where.items()]
    rows = list(model._default_manager.raw(sql, params))
    return rows[0] if rows else None
