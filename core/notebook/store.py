"""Where notebook entries are kept: any SQL database SQLAlchemy reaches (SQLite by default).

One table, `entries`, and a `notebook_schema` table holding the schema version: the store creates
both on first use and migrates an older schema forward (MIGRATIONS, applied in order, each in its own
transaction). Every write is one transaction; every read goes to the database (no cache), so a read
after a write sees it.

Entries belong to an owner: "" on a local run (one notebook), the signed-in user's id when the
deployment has login. Every query filters on the owner, so no user can read or change another's.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, fields
from datetime import UTC, datetime

import sqlalchemy as sa

from core.notebook.entries import Entry

SCHEMA_VERSION = 2
metadata = sa.MetaData()
entries_table = sa.Table(
    "entries", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("owner", sa.String(320), nullable=False, default="", index=True),
    sa.Column("created", sa.DateTime(timezone=True), nullable=False),
    sa.Column("page", sa.String(100), nullable=False),
    sa.Column("model", sa.Text, nullable=False),
    sa.Column("url", sa.Text, nullable=False, default=""),
    sa.Column("question", sa.Text, nullable=False, default=""),
    sa.Column("prediction", sa.Text, nullable=False, default=""),
    sa.Column("confidence", sa.Float, nullable=True),
    sa.Column("reason", sa.Text, nullable=False, default=""),
    sa.Column("measured", sa.Text, nullable=False, default=""),
    sa.Column("correct", sa.Boolean, nullable=True),
    sa.Column("heading", sa.String(40), nullable=False, default=""),
    sa.Column("note", sa.Text, nullable=False, default=""),
)
schema_table = sa.Table("notebook_schema", metadata, sa.Column("version", sa.Integer, nullable=False))

# version -> statements that bring the schema from version - 1 to version. Version 1 had no
# `heading` column (notes were not filed under the four headings yet).
MIGRATIONS: dict[int, Sequence[str]] = {
    2: ("ALTER TABLE entries ADD COLUMN heading VARCHAR(40) NOT NULL DEFAULT ''",),
}
_ENTRY_FIELDS = [f.name for f in fields(Entry)]


class NotebookStore:
    """Entries in one database. `NotebookStore(engine)` creates or migrates the schema."""

    def __init__(self, engine: sa.Engine):
        self.engine = engine
        self._migrate()

    @classmethod
    def from_url(cls, url: str) -> NotebookStore:
        return cls(sa.create_engine(url))

    # -- schema ---------------------------------------------------------------------------------
    def schema_version(self) -> int:
        with self.engine.connect() as conn:
            if not sa.inspect(conn).has_table("notebook_schema"):
                return 0
            return int(conn.execute(sa.select(sa.func.max(schema_table.c.version))).scalar() or 0)

    def _migrate(self) -> None:
        version = self.schema_version()
        if version == 0:
            with self.engine.begin() as conn:
                if sa.inspect(conn).has_table("entries"):
                    version = 1  # an entries table from before the schema table existed
                else:
                    metadata.create_all(conn)
                    conn.execute(schema_table.insert().values(version=SCHEMA_VERSION))
                    return
                schema_table.create(conn)
                conn.execute(schema_table.insert().values(version=1))
        for target in range(version + 1, SCHEMA_VERSION + 1):
            with self.engine.begin() as conn:
                for statement in MIGRATIONS[target]:
                    conn.execute(sa.text(statement))
                conn.execute(schema_table.update().values(version=target))

    # -- writes ---------------------------------------------------------------------------------
    def add(self, entry: Entry, owner: str = "") -> int:
        """Save one entry for `owner` (one transaction); returns its id."""
        return self.add_many([entry], owner)[0]

    def add_many(self, entries: Iterable[Entry], owner: str = "") -> list[int]:
        """Save entries for `owner`, all or none (one transaction); returns their ids."""
        rows = [_row(e, owner) for e in entries]
        ids = []
        with self.engine.begin() as conn:
            for row in rows:
                ids.append(int(conn.execute(entries_table.insert().values(**row)).inserted_primary_key[0]))
        return ids

    def delete(self, ids: Iterable[int], owner: str = "") -> int:
        """Delete the owner's entries with these ids; returns how many were deleted (others' stay)."""
        ids = [int(i) for i in ids]
        if not ids:
            return 0
        with self.engine.begin() as conn:
            result = conn.execute(entries_table.delete().where(
                entries_table.c.id.in_(ids), entries_table.c.owner == owner))
        return int(result.rowcount or 0)

    # -- reads ----------------------------------------------------------------------------------
    def entries(self, owner: str = "") -> list[Entry]:
        """The owner's entries, oldest first."""
        query = sa.select(entries_table).where(entries_table.c.owner == owner).order_by(
            entries_table.c.created, entries_table.c.id)
        with self.engine.connect() as conn:
            return [_entry(row._mapping) for row in conn.execute(query)]

    def count(self, owner: str = "") -> int:
        query = sa.select(sa.func.count()).select_from(entries_table).where(entries_table.c.owner == owner)
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar() or 0)


def _row(entry: Entry, owner: str) -> dict:
    row = {k: v for k, v in asdict(entry).items() if k != "id"}
    row["owner"] = owner
    created = row["created"]
    row["created"] = created if created.tzinfo else created.replace(tzinfo=UTC)
    return row


def _entry(mapping) -> Entry:
    values = {k: mapping[k] for k in _ENTRY_FIELDS if k in mapping}
    created = values.get("created")
    if isinstance(created, datetime) and created.tzinfo is None:
        values["created"] = created.replace(tzinfo=UTC)  # SQLite returns naive datetimes
    return Entry(**values)
