"""The database toolkit of the hot paths, for every app: server-side binding cursors on
Django's connection (``hot_cursor``, ``hot_pipeline``), the cheap array parameters of
set-wise statements (``int_array``, ``text_array``, ``numeric_texts``, ``json_array``), model
instances from raw rows (``rows_as``, ``instances``, ``refresh_from_row``) and inserts in one
prepared statement (``insert_all``). Nothing here knows a table of its own."""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from decimal import Decimal
from typing import Any, TypeVar

import orjson
import psycopg
from django.db import connection, transaction
from django.db.models import Model
from django.db.models.base import ModelState
from django.db.models.fields.mixins import FieldCacheMixin
from django.db.models.fields.related_descriptors import ForeignKeyDeferredAttribute
from django.db.models.query_utils import DeferredAttribute
from django.db.models.signals import post_init, pre_init
from psycopg.pq import TransactionStatus
from psycopg.rows import TupleRow

IDLE = TransactionStatus.IDLE

M = TypeVar("M", bound=Model)

# The set-wise statements of a batch take each column as one array parameter. Two kinds are
# passed in a cheaper form than psycopg's own (per value, in Python): decimals as text,
# which PostgreSQL casts to numeric exactly (~0.3 µs a value instead of ~1.8 µs), and JSON
# values as one JSON array text made into a jsonb[] in order (one ``json.dumps`` of them all,
# ~0.8 µs a value instead of ~7 µs).
JSONB_ARRAY = (
    "(SELECT array_agg(v ORDER BY n) FROM jsonb_array_elements(%b::jsonb) "
    "WITH ORDINALITY AS j(v, n))"
)


def int_array(values: Iterable[int | None]) -> str:
    """Integers for a ``%b::bigint[]`` parameter, as PostgreSQL's array text (~0.25 µs a
    value; psycopg's binary list dumper, which also scans the list for its element type,
    ~0.5 µs, and its text one ~1.7 µs)."""
    return "{" + ",".join(["NULL" if v is None else str(int(v)) for v in values]) + "}"


def text_array(values: Iterable[str | None]) -> str:
    """Strings for a ``%b::varchar[]`` parameter, as PostgreSQL's array text: each quoted,
    with its quotes and backslashes escaped."""
    return (
        "{"
        + ",".join(
            [
                "NULL" if v is None else '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
                for v in values
            ]
        )
        + "}"
    )


def numeric_texts(values: Iterable[Decimal | None]) -> list[str | None]:
    """Decimals for a ``%b::numeric[]`` parameter."""
    return [None if value is None else str(value) for value in values]


def json_array(values: Iterable[object]) -> str:
    """JSON values for a ``JSONB_ARRAY`` parameter: through orjson (a batch's 1,000 answers
    and properties in ~1 ms, where ``json.dumps`` took ~10 ms), or the standard library for
    integers beyond 64 bits, which orjson does not take. PostgreSQL reads both
    texts to the same jsonb. The values are JSON: no NaN or infinity, which orjson would
    write as null (``event_data`` refuses them in properties)."""
    values = list(values)
    try:
        return orjson.dumps(values).decode()
    except orjson.JSONEncodeError:
        return json.dumps(values)


class JsonbTextBinaryLoader(psycopg.adapt.Loader):
    """jsonb in binary format as its JSON text, as Django's connections load it in text
    format (its ``JSONField`` parses the text itself): binary rows may then hold JSON
    columns too. The binary form is a version byte (1) and the text."""

    format = psycopg.pq.Format.BINARY

    def load(self, data: psycopg.abc.Buffer) -> str:
        if data[:1] != b"\x01":
            raise psycopg.DataError("unknown jsonb binary format version")
        return bytes(data[1:]).decode()


def jsonb_binary_as_text(conn: psycopg.Connection) -> None:
    """Load this connection's binary jsonb as text (``JsonbTextBinaryLoader``); every
    connection Django opens gets it (``WalletsConfig``)."""
    conn.adapters.register_loader("jsonb", JsonbTextBinaryLoader)


@contextmanager
def hot_cursor(*, binary: bool = False) -> Iterator[_HotCursor]:
    """A server-side binding cursor on Django's connection, for the few fixed statements of
    the metering hot path: PostgreSQL parses and plans each once per connection (prepared;
    ``DB_PREPARE_THRESHOLD``) instead of on every event. Errors are Django's, as from any
    cursor. ``binary``: rows arrive in PostgreSQL's binary format, which psycopg loads in C
    (timestamps and numbers several times faster than from text: Django's own text loader of
    timestamptz is Python). JSON columns arrive as text either way (``JsonbTextBinaryLoader``)."""
    connection.ensure_connection()
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
        if binary:
            cursor.format = psycopg.pq.Format.BINARY
        yield _HotCursor(cursor)


@contextmanager
def hot_pipeline(n: int, *, commit: bool = False) -> Iterator[list[_HotCursor]]:
    """``n`` hot cursors whose statements reach PostgreSQL together (psycopg's pipeline
    mode): one round trip for several statements, which PostgreSQL still runs in order.

    Inside ``transaction.atomic()``, a transaction that has not begun yet begins in the
    same round trip: psycopg would send its BEGIN alone and wait for the answer. Django's
    bookkeeping is untouched; its COMMIT or ROLLBACK ends the transaction as usual.

    ``commit``: these are the last statements of the outermost atomic block, so its COMMIT
    goes in the same round trip too (Django's own commit then finds nothing left to do).
    Nothing may write after them. Inside a nested block (a savepoint) it is ignored."""
    connection.ensure_connection()
    conn = connection.connection
    begin = connection.in_atomic_block and conn.info.transaction_status == IDLE
    commit = commit and _outermost_block()
    if begin:
        conn.autocommit = True  # psycopg must not begin it: the BEGIN goes first below
    # (until the transaction ends: it is open on the server, whatever psycopg's flag says)
    try:
        with connection.wrap_database_errors, conn.pipeline():
            if begin:
                psycopg.Cursor(conn).execute("BEGIN")
            yield [_HotCursor(psycopg.Cursor(conn)) for _ in range(n)]
            if commit:
                conn.commit()  # queued behind the statements; the pipeline's one sync
    finally:
        if begin and conn.info.transaction_status == IDLE:
            conn.autocommit = False  # as Django set it: a later statement begins anew


def _outermost_block() -> bool:
    return (
        len(connection.atomic_blocks) == 1
        and not connection.savepoint_ids
        and not connection.needs_rollback
    )


class _HotCursor:
    """Runs statements as Django's cursors do for everything around them: through the
    connection's execute wrappers (instrumentation, tests that refuse queries) and into the
    query log when it is on (DEBUG, ``CaptureQueriesContext``)."""

    def __init__(self, cursor: psycopg.Cursor) -> None:
        self.cursor = cursor

    def _run(
        self,
        sql: str,
        params: Sequence[Any] | None,
        many: bool,
        context: dict[str, Any],
    ) -> psycopg.Cursor[TupleRow]:
        if not connection.queries_logged:
            return self.cursor.execute(sql, params)
        started = time.monotonic()
        try:
            return self.cursor.execute(sql, params)
        finally:
            # the entry holds the parameters too (the stubs type the entries as text only)
            entry: dict[str, Any] = {
                "sql": sql,
                "time": f"{time.monotonic() - started:.3f}",
                "params": params,
            }
            connection.queries_log.append(entry)

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> Any:
        executor: Callable[..., Any] = self._run
        for wrapper in reversed(connection.execute_wrappers):
            executor = functools.partial(wrapper, executor)
        return executor(sql, params, False, {"connection": connection, "cursor": self})

    def fetchone(self) -> Any:  # a row, or None: as Django's cursors type it
        return self.cursor.fetchone()

    def fetchall(self) -> list[TupleRow]:
        return self.cursor.fetchall()


def rows_as(model: type[M], sql: str, params: Sequence[Any], *, binary: bool = False) -> list[M]:
    """Model instances from a raw query selecting ``model``'s concrete columns in order (the
    hot paths skip the ORM's query building; the instances are the ones it would make).
    ``binary``: see ``hot_cursor`` (models without JSON fields)."""
    with hot_cursor(binary=binary) as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    return instances(model, rows)


def instances(model: type[M], rows: Iterable[Sequence[Any]]) -> list[M]:
    """Model instances from rows of ``model``'s concrete columns in order, converted as the
    ORM converts what the driver returns (JSON arrives as text)."""
    fields = model._meta.concrete_fields
    names = [f.attname for f in fields]
    converters = [(i, f.from_db_value) for i, f in enumerate(fields) if hasattr(f, "from_db_value")]
    if not converters and _made_plainly(model):
        return [_plain_instance(model, names, row) for row in rows]
    made = []
    for row in rows:
        if converters:
            row = list(row)
            for i, convert in converters:
                row[i] = convert(row[i], None, connection)
        made.append(model.from_db("default", names, row))
    return made


def refresh_from_row(instance: Model, row: Sequence[Any]) -> None:
    """``instance.refresh_from_db()`` from a row of its model's concrete columns in order
    that the caller read (an ``UPDATE … RETURNING``): the fields set, cached related
    objects dropped, as Django's own refresh does."""
    (fresh,) = instances(type(instance), [row])
    instance._prefetched_objects_cache = {}  # type: ignore[attr-defined]  # not in the stubs
    for f in instance._meta.concrete_fields:
        setattr(instance, f.attname, getattr(fresh, f.attname))
        if isinstance(f, FieldCacheMixin) and f.is_cached(instance):  # a relation
            f.delete_cached_value(instance)
    for rel in instance._meta.related_objects:
        if rel.is_cached(instance):
            rel.delete_cached_value(instance)
    for f in instance._meta.private_fields:
        if f.is_relation and f.is_cached(instance):
            f.delete_cached_value(instance)
    instance._state.db = "default"


def _made_plainly(model: type[Model]) -> bool:
    """Whether an instance of ``model`` loaded from the database is no more than its
    attributes and state: no ``__init__`` of its own, nothing listening to its init
    signals, only Django's own descriptors on its fields (a field type with a descriptor of
    its own, such as a money field, needs ``__init__``)."""
    return (
        model.__init__ is Model.__init__
        and not pre_init.has_listeners(model)
        and not post_init.has_listeners(model)
        and all(
            type(model.__dict__.get(f.attname)) in DJANGO_DESCRIPTORS
            for f in model._meta.concrete_fields
        )
    )


DJANGO_DESCRIPTORS = (DeferredAttribute, ForeignKeyDeferredAttribute)


def _plain_instance(model: type[M], names: list[str], row: Sequence[Any]) -> M:
    """What ``Model.from_db`` makes, made directly (~2.5 µs instead of ~9.5 µs: ``__init__``
    sets each field through its descriptor and sends two signals, which such a model does
    not need)."""
    instance = model.__new__(model)
    state = ModelState()
    state.adding = False
    state.db = "default"
    instance.__dict__.update(zip(names, row, strict=True))
    instance._state = state
    return instance


_INSERT_SQL: dict[tuple[type, int], tuple[str, list]] = {}
INSERT_ROWS = 500  # rows per statement: PostgreSQL takes at most 65,535 parameters


def insert_all(objs: Sequence[Model]) -> None:
    """Write new instances of one model (no key set yet) as ``save()`` and ``bulk_create``
    do, in one prepared statement per model and row count (the ORM builds each insert's SQL
    again, and PostgreSQL parses and plans it again): every concrete column but the
    automatic primary key, each value as the ORM prepares it (``pre_save``,
    ``get_db_prep_save``), the new keys set on the instances in order. Errors are Django's
    (``IntegrityError``)."""
    if any(obj.pk is not None for obj in objs):
        raise ValueError("insert_all writes new instances only (their key is not set)")
    for first in range(0, len(objs), INSERT_ROWS):
        _insert_rows(objs[first : first + INSERT_ROWS])


def _insert_rows(objs: Sequence[Model]) -> None:
    model = type(objs[0])
    key = (model, len(objs))
    if key not in _INSERT_SQL:
        meta = model._meta
        fields = [
            f for f in meta.local_concrete_fields if f is not meta.auto_field and not f.generated
        ]
        names = ", ".join(f'"{f.column}"' for f in fields)
        row = "(" + ", ".join(["%s"] * len(fields)) + ")"
        rows = ", ".join([row] * len(objs))
        _INSERT_SQL[key] = (
            f'INSERT INTO "{meta.db_table}" ({names}) VALUES {rows} '  # noqa: S608 - names only
            f'RETURNING "{meta.pk.column}"',
            fields,
        )
    sql, fields = _INSERT_SQL[key]
    params = [f.get_db_prep_save(f.pre_save(obj, True), connection) for obj in objs for f in fields]
    with hot_cursor() as cursor:
        cursor.execute(sql, params)
        keys = cursor.fetchall()
    for obj, (pk,) in zip(objs, keys, strict=True):
        obj.pk = pk
        obj._state.adding = False
        obj._state.db = "default"


def columns(model: type[Model], alias: str = "") -> str:
    prefix = f"{alias}." if alias else ""
    return ", ".join(f'{prefix}"{f.column}"' for f in model._meta.concrete_fields)


def in_transaction() -> bool:
    return transaction.get_connection().in_atomic_block
