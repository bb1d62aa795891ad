"""Hand-written SQL for the hottest statements: the agent API (``tasks/next``, ``report``) and
the command round trip (the command row, its ACK).

The ORM compiles every query anew, and even ``Model.objects.raw`` resolves its columns and
converters on every call; on this project's reference machine that costs 2.2 ms (ORM) and
0.9 ms (raw) of CPU for a primary-key lookup that takes 0.23 ms through a bare cursor, more
than PostgreSQL spends running it (bench/dispatch.py --profile). The statements, column lists
and value converters here are built from the models' metadata once per process, so table and
column names still follow the models, and rows still come back as model instances with every
field converted as the ORM would (tests/watcher/test_sql.py compares them).

What this skips: ``pre_save``/``post_save`` signals (nothing in the project listens to the
models saved here) and querysets' chaining. Everything else uses the ORM.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any, TypeVar

from django.db import DEFAULT_DB_ALIAS, connection, connections, models
from django.db.backends.base.base import BaseDatabaseWrapper
from django.utils.asyncio import async_unsafe

M = TypeVar("M", bound=models.Model)


@dataclass(frozen=True)
class _Table:
    name: str
    attnames: tuple[str, ...]
    columns: str  # the select list, in concrete-field order
    converters: tuple[tuple[int, tuple[Callable[..., Any], ...], Any], ...]


def _db() -> BaseDatabaseWrapper:
    """This thread's connection itself. ``django.db.connection`` is a proxy that looks the
    connection up again on every attribute, about a hundred times per agent round trip here
    and in the fields' ``get_db_prep_*`` (py-spy); the statement builders, cached once per
    process, still use it."""
    return connections[DEFAULT_DB_ALIAS]


@async_unsafe
def _cursor(db: BaseDatabaseWrapper) -> Any:
    """A cursor for these statements: on PostgreSQL one that binds parameters on the server.

    Django's psycopg cursors bind on the client (``server_side_binding`` is off, so that
    ORM queries with more than 65,535 parameters keep working): psycopg then quotes every value
    into the SQL text in Python, 6 % of the server's CPU on the agent hot path (py-spy). These
    few statements have a handful of parameters each, so they send them apart from the text
    (libpq does it in C; nothing is prepared: Django leaves psycopg's ``prepare_threshold``
    off). The cursor is wrapped as Django wraps its own (``_prepare_cursor``, checked by
    tests/watcher/test_sql.py on upgrades): errors come out as ``django.db`` exceptions, execute
    wrappers and query logging apply, the logged SQL showing ``$1`` placeholders.
    """
    if db.vendor != "postgresql":
        return db.cursor()
    from django.db.backends.postgresql.base import ServerBindingCursor

    db.close_if_health_check_failed()
    db.ensure_connection()
    with db.wrap_database_errors:
        return db._prepare_cursor(ServerBindingCursor(db.connection))


def _q(name: str) -> str:
    return connection.ops.quote_name(name)


@cache
def _table(model: type[models.Model], vendor: str) -> _Table:
    fields = model._meta.concrete_fields
    converters = []
    for i, field in enumerate(fields):
        col = field.get_col(model._meta.db_table)
        found = tuple(connection.ops.get_db_converters(col) + col.get_db_converters(connection))
        if found:
            converters.append((i, found, col))
    return _Table(
        name=_q(model._meta.db_table),
        attnames=tuple(f.attname for f in fields),
        columns=", ".join(_q(f.column) for f in fields),
        converters=tuple(converters),
    )


def _column(model: type[models.Model], name: str) -> str:
    return _q(model._meta.get_field(name).column)


def prep(model: type[models.Model], name: str, value: Any, db: BaseDatabaseWrapper) -> Any:
    """``value`` as the database adapter wants it for field ``name`` of ``model``."""
    return model._meta.get_field(name).get_db_prep_save(value, db)


def _load(
    model: type[M], table: _Table, row: tuple[Any, ...] | None, db: BaseDatabaseWrapper
) -> M | None:
    if row is None:
        return None
    values = list(row)
    for i, converters, col in table.converters:
        value = values[i]
        for convert in converters:
            value = convert(value, col, db)
        values[i] = value
    return model.from_db(db.alias, list(table.attnames), values)


def _fetch_one(model: type[M], sql: str, params: list[Any], db: BaseDatabaseWrapper) -> M | None:
    with _cursor(db) as cursor:
        cursor.execute(sql, params)
        return _load(model, _table(model, db.vendor), cursor.fetchone(), db)


@cache
def _select_sql(model: type[models.Model], field: str, lock: bool, vendor: str) -> str:
    table = _table(model, vendor)
    lock_clause = " FOR UPDATE" if lock and connection.features.has_select_for_update else ""
    return (
        f"SELECT {table.columns} FROM {table.name} WHERE {_column(model, field)} = %s "
        f"LIMIT 1{lock_clause}"
    )


def get_one(model: type[M], field: str, value: Any, *, lock: bool = False) -> M | None:
    """The row of ``model`` whose ``field`` equals ``value`` (one of them if several), or None.

    ``lock`` takes the row lock (``SELECT … FOR UPDATE``) where the database has one; call it
    inside ``transaction.atomic``.
    """
    db = _db()
    sql = _select_sql(model, field, lock, db.vendor)
    return _fetch_one(model, sql, [prep(model, field, value, db)], db)


# A ``where`` of the update helpers maps a field name to a value (``=``), or ``name__in`` to a
# non-empty list of values (``IN``). Its shape, each name with the length of its list (None for
# ``=``), is part of the cached statement's key; the values are parameters. So each length of
# list caches a statement of its own: meant for short lists of fixed length (a few statuses),
# not for lists of ids.
WhereShape = tuple[tuple[str, int | None], ...]


def _where(
    model: type[models.Model], where: dict[str, Any], db: BaseDatabaseWrapper
) -> tuple[WhereShape, list[Any]]:
    shape: list[tuple[str, int | None]] = []
    params: list[Any] = []
    for key, value in where.items():
        name, _, lookup = key.partition("__")
        if lookup == "in":
            if isinstance(value, str | bytes):
                raise TypeError(f"{key}: a list of values, not a string")
            values = list(value)
            if not values:
                raise ValueError(f"{key}: an empty list matches nothing")
            shape.append((name, len(values)))
            params += [prep(model, name, v, db) for v in values]
        elif lookup:
            raise ValueError(f"{key}: only exact matches and __in are supported")
        else:
            shape.append((name, None))
            params.append(prep(model, name, value, db))
    return tuple(shape), params


@cache
def _update_sql(
    model: type[models.Model],
    names: tuple[str, ...],
    where: WhereShape,
    increment: tuple[str, ...],
    vendor: str,
) -> str:
    table = _table(model, vendor)
    return f"{_update_clause(model, names, where, increment)} RETURNING {table.columns}"


def _update_clause(
    model: type[models.Model],
    names: tuple[str, ...],
    where: WhereShape,
    increment: tuple[str, ...] = (),
) -> str:
    """``UPDATE table SET name = %s, …, counter = counter + 1 WHERE name = %s AND …``."""
    assignments = [f"{_column(model, n)} = %s" for n in names]
    assignments += [f"{_column(model, n)} = {_column(model, n)} + 1" for n in increment]
    conditions = " AND ".join(
        f"{_column(model, n)} = %s"
        if size is None
        else f"{_column(model, n)} IN ({', '.join(['%s'] * size)})"
        for n, size in where
    )
    return f"UPDATE {_q(model._meta.db_table)} SET {', '.join(assignments)} WHERE {conditions}"


def update_returning(
    model: type[M],
    values: dict[str, Any],
    where: dict[str, Any],
    increment: tuple[str, ...] = (),
) -> M | None:
    """``UPDATE … SET values, increment += 1 WHERE where … RETURNING`` the row, or None when no
    row matched. One statement, so the conditional update and the read of its result cannot be
    told apart by a concurrent writer. ``where`` should match one row at most."""
    db = _db()
    shape, where_params = _where(model, where, db)
    sql = _update_sql(model, tuple(values), shape, increment, db.vendor)
    params = [prep(model, n, v, db) for n, v in values.items()] + where_params
    return _fetch_one(model, sql, params, db)


@cache
def _insert_sql(model: type[models.Model], vendor: str) -> tuple[str, tuple[Any, ...]]:
    meta = model._meta
    fields = tuple(f for f in meta.local_concrete_fields if f is not meta.auto_field)
    returning = ", ".join(_q(f.column) for f in meta.db_returning_fields)
    sql = (
        f"INSERT INTO {_q(meta.db_table)} ({', '.join(_q(f.column) for f in fields)}) "
        f"VALUES ({', '.join(['%s'] * len(fields))})"
        + (f" RETURNING {returning}" if returning else "")
    )
    return sql, fields


def insert(obj: M) -> M:
    """Insert a new ``obj`` as ``obj.save(force_insert=True)`` would, and return it with its
    primary key: an auto primary key is left unset and comes back from the database; any other
    (a UUID default, say) is set already. Field defaults were applied when ``obj`` was
    constructed; ``pre_save`` runs here (``auto_now_add`` and the like)."""
    model = type(obj)
    meta = model._meta
    if meta.auto_field is not None and getattr(obj, meta.auto_field.attname) is not None:
        raise ValueError(f"{model.__name__}: insert() leaves the auto primary key to the database")
    if meta.auto_field is None and obj.pk is None:
        raise ValueError(f"{model.__name__}: insert() needs the primary key set")
    db = _db()
    sql, fields = _insert_sql(model, db.vendor)
    params = [f.get_db_prep_save(f.pre_save(obj, True), db) for f in fields]
    with _cursor(db) as cursor:
        cursor.execute(sql, params)
        returned = cursor.fetchone() if meta.db_returning_fields else None
    for field, value in zip(meta.db_returning_fields, returned or (), strict=False):
        setattr(obj, field.attname, value)
    obj._state.adding = False
    obj._state.db = db.alias
    return obj


@cache
def _plain_update_sql(
    model: type[models.Model], names: tuple[str, ...], where: WhereShape, vendor: str
) -> str:
    return _update_clause(model, names, where)


def update(model: type[models.Model], values: dict[str, Any], where: dict[str, Any]) -> int:
    """``UPDATE … SET values WHERE where …``; the number of rows changed."""
    db = _db()
    shape, where_params = _where(model, where, db)
    sql = _plain_update_sql(model, tuple(values), shape, db.vendor)
    params = [prep(model, n, v, db) for n, v in values.items()] + where_params
    with _cursor(db) as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount
