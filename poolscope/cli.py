"""The ``poolscope`` command line: the same views, headless.

Every command reads the database read-only unless it says it writes
(``generate``).  Run ``poolscope COMMAND --help`` for the options.

Example::

    $ poolscope info sample_data/demo.db
    $ poolscope snapshot sample_data/demo.db --pool pool.alpha --cursor 40
"""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from . import wire
from .errors import PoolscopeError


class _Group(click.Group):
    """Turns a :class:`PoolscopeError` into a one-line message and exit status 2."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except PoolscopeError as error:
            click.echo(f"Error: {error}", err=True)
            ctx.exit(2)


@click.group(cls=_Group)
@click.version_option(package_name="poolscope")
def cli() -> None:
    """Explore agent-pool histories written by the Rust agent SDK."""


def _open(path: str, quiet: bool = True):
    from .history import open as open_db

    return open_db(path, progress=None if not quiet else False)


@cli.command()
@click.argument("db", type=click.Path(dir_okay=True))
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def info(db: str, as_json: bool) -> None:
    """Pools, heads, records by kind and status, and messages and wakes by current status.

    "records by status" counts every run_message (wake) record: each is one
    status transition.  "by current status" counts the messages (wakes) at the
    head by the status of their latest record, as the snapshot, the summary
    and the report do.
    """
    database = _open(db)
    pools = [_pool_info(history) for history in database.pools()]
    if as_json:
        click.echo(json.dumps({"path": db, "pools": pools}, ensure_ascii=False, indent=2))
        return

    def counts(values: dict[str, int]) -> str:
        return ", ".join(f"{k}={v}" for k, v in values.items() if v) or "none"

    click.echo(f"{db}: {len(pools)} pool(s)")
    for pool in pools:
        click.echo(f"\n{pool['pool_id']}  head={pool['head']}  records={pool['records']}")
        click.echo(f"  records by kind:               {counts(pool['kinds'])}")
        click.echo(f"  message records by status:     {counts(pool['message_records_by_status'])}")
        click.echo(f"  wake records by status:        {counts(pool['wake_records_by_status'])}")
        click.echo(f"  members now:                   {pool['members']}")
        click.echo(f"  messages by current status:    {counts(pool['messages_by_current_status'])}")
        click.echo(f"  wakes by current status:       {counts(pool['wakes_by_current_status'])}")


def _pool_info(history: Any) -> dict[str, Any]:
    """What ``poolscope info`` says about one pool."""
    index = history.index
    kinds = {kind: int(index.kind_mask(kind).sum()) for kind in (*wire.KINDS, "damaged")}
    head = index.head
    return {
        "pool_id": history.pool_id,
        "head": head,
        "records": len(index),
        "kinds": dict(sorted((k, v) for k, v in kinds.items() if v)),
        "message_records_by_status": index.status_counts("messages"),
        "wake_records_by_status": index.status_counts("wakes"),
        "members": index.count_live("members", head),
        "messages": index.count_live("messages", head),
        "messages_by_current_status": index.current_status_counts("messages", head),
        "wakes": index.count_live("wakes", head),
        "wakes_by_current_status": index.current_status_counts("wakes", head),
    }


@cli.command()
@click.argument("db", type=click.Path(dir_okay=True))
@click.option("--pool", "pool_id", required=True, help="Pool id.")
@click.option("--after", type=int, default=None, help="Only records with seq > AFTER.")
@click.option("--upto", type=int, default=None, help="Only records with seq <= UPTO.")
@click.option("--kind", "kinds", multiple=True, type=click.Choice(wire.KINDS), help="Only these kinds (repeatable).")
def records(db: str, pool_id: str, after: int | None, upto: int | None, kinds: tuple[str, ...]) -> None:
    """Records as JSON lines, in the SDK's AgentPoolStoreRecord shape."""
    history = _open(db).pool(pool_id)
    damaged = 0
    out = sys.stdout
    for record in history.iter_records(after, upto, kinds=list(kinds) or None):
        if record.problem is not None:
            damaged += 1
            click.echo(f"Warning: {record.problem}", err=True)
            continue
        out.write(record.to_json())
        out.write("\n")
    if damaged:
        sys.exit(1)


@cli.command()
@click.argument("db", type=click.Path(dir_okay=True))
@click.option("--pool", "pool_id", required=True, help="Pool id.")
@click.option("--cursor", type=int, default=None, help="Replay to this cursor (default: the head).")
@click.option("--pretty", is_flag=True, help="Indent the JSON (not byte-identical to the SDK's).")
@click.option("--lenient", is_flag=True, help="Skip damaged records instead of failing like the SDK.")
def snapshot(db: str, pool_id: str, cursor: int | None, pretty: bool, lenient: bool) -> None:
    """The pool's snapshot at a cursor, as the SDK's JSON."""
    snap = _open(db).pool(pool_id).snapshot(cursor, strict=not lenient)
    if pretty:
        click.echo(json.dumps(snap.to_dict(), ensure_ascii=False, indent=2))
    else:
        click.echo(snap.to_json())


@cli.command()
@click.argument("out", type=click.Path(dir_okay=False))
@click.option("--pools", default=3, show_default=True, help="How many interleaved pools.")
@click.option("--records", default=1000, show_default=True, help="About how many records per pool.")
@click.option("--seed", default=0, show_default=True, help="Random seed (same seed, same file).")
@click.option("--prefix", default="pool", show_default=True, help="Pool id prefix.")
@click.option(
    "--members-cap", type=int, default=None, help="Keep at most this many members (runs leave as others join)."
)
def generate(out: str, pools: int, records: int, seed: int, prefix: str, members_cap: int | None) -> None:
    """Write a realistic sample history through PoolStore (appends if OUT exists)."""
    from .generate import generate as run

    summary = run(out, pools=pools, records=records, seed=seed, prefix=prefix, members_cap=members_cap)
    click.echo(f"wrote {summary['records']} records in {len(summary['pools'])} pools to {summary['path']}")


@cli.command()
@click.argument("db", type=click.Path(dir_okay=True))
@click.argument("out", type=click.Path(file_okay=False))
@click.option("--format", "fmt", type=click.Choice(["parquet", "csv", "json"]), default="parquet", show_default=True)
@click.option("--pool", "pools", multiple=True, help="Only these pools (repeatable; default all).")
@click.option("--upto", type=int, default=None, help="Frames as they were at this cursor.")
def export(db: str, out: str, fmt: str, pools: tuple[str, ...], upto: int | None) -> None:
    """Write the records, members, messages and wakes frames (and a summary) to folder OUT."""
    from .export import export as run

    for path in run(_open(db), out, format=fmt, pools=list(pools) or None, upto=upto):
        click.echo(str(path))


def main() -> None:  # pragma: no cover
    cli()


from .check import doctor as _doctor  # noqa: E402

cli.add_command(_doctor)

from .lab import lab as _lab  # noqa: E402

cli.add_command(_lab)

from .report import report_command as _report  # noqa: E402

cli.add_command(_report, "report")
