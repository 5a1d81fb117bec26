"""The ``poolscope`` command line: the same views, headless.

Every command reads the database read-only unless it says it writes
(``generate``).  Run ``poolscope COMMAND --help`` for the options.

Example::

    $ poolscope info sample_data/demo.db
    $ poolscope snapshot sample_data/demo.db --pool pool.alpha --cursor 40
"""

from __future__ import annotations

import json
import os
import shlex
import sys
from pathlib import Path
from typing import Any

import click

from . import wire
from .errors import CursorError, PoolscopeError
from .lab import APPS as LAB_APPS
from .terminal import escape, escaped_warnings


class _Group(click.Group):
    """Turns a :class:`PoolscopeError` into a one-line message and exit status 2.

    Every text a command prints that comes from a database (ids, paths,
    messages, warnings) shows control and bidi characters escaped
    (:func:`poolscope.terminal.escape`); JSON output stays exact JSON.
    """

    def invoke(self, ctx: click.Context) -> Any:
        try:
            with escaped_warnings():
                return super().invoke(ctx)
        except PoolscopeError as error:
            click.echo(f"Error: {escape(error)}", err=True)
            ctx.exit(2)


@click.group(cls=_Group)
@click.version_option(package_name="poolscope")
def cli() -> None:
    """Explore agent-pool histories written by the Rust agent SDK."""


#: Where :func:`reading_options` keeps a command's --timeout and --max-payload for :func:`_open`.
_LIMITS = "poolscope.limits"


def _seconds(value: float) -> float:
    if not value > 0:
        raise click.BadParameter(f"must be a positive number of seconds, not {value}")
    return value


def reading_options(command: Any, *, max_payload: bool = True) -> Any:
    """The options of every command that reads a database: ``--timeout`` and
    ``--max-payload``, handed to :func:`poolscope.open` by :func:`_open`
    (a fleet command takes ``--timeout`` only: :func:`poolscope.fleet` has no
    payload limit of its own)."""
    from .source import DEFAULT_MAX_PAYLOAD, DEFAULT_TIMEOUT

    def keep(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
        ctx.meta.setdefault(_LIMITS, {})[str(param.name)] = value
        return value

    timeout = click.option(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT,
        show_default=True,
        expose_value=False,
        callback=lambda ctx, param, value: keep(ctx, param, _seconds(value)),
        help="Seconds to wait for another process's lock, and at most for any one query "
        "(a view that never ends, a huge scan): then exit with an error.",
    )
    limit = click.option(
        "--max-payload",
        type=click.IntRange(min=1),
        default=DEFAULT_MAX_PAYLOAD,
        show_default=True,
        expose_value=False,
        callback=keep,
        help="Largest stored value read, in bytes; a larger payload is a damaged record (named by pool and seq).",
    )
    return timeout(limit(command)) if max_payload else timeout(command)


def fleet_reading_options(command: Any) -> Any:
    """``--timeout`` for a fleet command (see :func:`reading_options`)."""
    return reading_options(command, max_payload=False)


def _limits() -> dict[str, Any]:
    """The --timeout and --max-payload of the running command (none outside one)."""
    ctx = click.get_current_context(silent=True)
    return {} if ctx is None else dict(ctx.meta.get(_LIMITS, {}))


def _json_text(value: Any, **options: Any) -> str:
    """``json.dumps(value, ensure_ascii=False, ...)`` that is always UTF-8: a
    file name that is not UTF-8 (decoded with lone surrogates, ``caf\\udce9.db``)
    is written as JSON's escape of it, not as the raw byte.

    >>> _json_text({"path": "caf\\udce9.db", "pool": "é"})
    '{"path": "caf\\\\udce9.db", "pool": "é"}'
    """
    options.setdefault("ensure_ascii", False)
    return json.dumps(value, **options).encode("utf-8", "backslashreplace").decode("utf-8")


def _pictures_outside_home(databases: list[str] | None = None) -> None:
    """For a command that draws: matplotlib keeps its configuration and font
    cache in poolscope's cache folder (``matplotlib`` in it), unless
    ``MPLCONFIGDIR`` says where -- else it would create
    ``~/.config/matplotlib`` and ``~/.cache/matplotlib``, and a command
    writes nothing in the home folder but its index cache.  Where that folder
    is not one matplotlib can be given -- a symlink, or holding one (it would
    write through it), the cache folder being the folder of a database read
    (``databases``: nothing is written beside one), or it cannot be made --
    matplotlib gets a private temporary folder, removed at exit."""
    import os

    if os.environ.get("MPLCONFIGDIR") or "matplotlib" in sys.modules:
        return
    from .cache import default_dir

    root = default_dir()
    folder = root / "matplotlib"
    if _safe_picture_folder(root, folder, databases or []):
        os.environ["MPLCONFIGDIR"] = str(folder)
        return
    import atexit
    import shutil
    import tempfile

    private = tempfile.mkdtemp(prefix="poolscope-matplotlib-")
    atexit.register(shutil.rmtree, private, True)
    os.environ["MPLCONFIGDIR"] = private


def _safe_picture_folder(root: Path, folder: Path, databases: list[str]) -> bool:
    """Whether ``folder`` (in the cache folder ``root``) is a real folder, or can
    be made one, that holds no symlink and is no database's folder."""
    import os

    try:
        real_root = os.path.realpath(root)
        for database in databases:
            if os.path.isdir(database):  # a fleet's folder: its databases may be anywhere below it
                if os.path.commonpath([real_root, os.path.realpath(database)]) == os.path.realpath(database):
                    return False
            elif os.path.realpath(os.path.dirname(os.path.realpath(database))) == real_root:
                return False
        if os.path.islink(folder):
            return False
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        with os.scandir(folder) as entries:
            return not any(entry.is_symlink() for entry in entries)
    except (OSError, ValueError):
        return False


def _open(path: str, quiet: bool = True):
    from .history import open as open_db

    return open_db(path, progress=None if not quiet else False, **_limits())


@cli.command()
@click.argument("db", type=click.Path(dir_okay=True))
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@reading_options
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
        click.echo(_json_text({"path": db, "pools": pools}, ensure_ascii=False, indent=2))
        return

    def counts(values: dict[str, int]) -> str:
        return ", ".join(f"{k}={v}" for k, v in values.items() if v) or "none"

    click.echo(f"{escape(db)}: {len(pools)} pool(s)")
    for pool in pools:
        click.echo(f"\n{escape(pool['pool_id'])}  head={pool['head']}  records={pool['records']}")
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
@click.option("--after", type=int, default=None, help="Only records with seq > AFTER (a cursor, 0..head).")
@click.option("--upto", type=int, default=None, help="Only records with seq <= UPTO (a cursor, 0..head).")
@click.option("--kind", "kinds", multiple=True, type=click.Choice(wire.KINDS), help="Only these kinds (repeatable).")
@reading_options
def records(db: str, pool_id: str, after: int | None, upto: int | None, kinds: tuple[str, ...]) -> None:
    """Records as JSON lines, in the SDK's AgentPoolStoreRecord shape.

    A damaged record is not printed: a warning on stderr names it, and the
    exit status is 1 (as doctor's when it finds errors)."""
    history = _open(db).pool(pool_id)
    after, upto = (
        None if c is None else history.index.check_cursor(c, n) for c, n in ((after, "after"), (upto, "upto"))
    )
    damaged = 0
    out = sys.stdout
    for record in history.iter_records(after, upto, kinds=list(kinds) or None):
        if record.problem is not None:
            damaged += 1
            click.echo(f"Warning: {escape(record.problem)}", err=True)
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
@reading_options
def snapshot(db: str, pool_id: str, cursor: int | None, pretty: bool, lenient: bool) -> None:
    """The pool's snapshot at a cursor, as the SDK's JSON."""
    snap = _open(db).pool(pool_id).snapshot(cursor, strict=not lenient)
    if pretty:
        click.echo(_json_text(snap.to_dict(), ensure_ascii=False, indent=2))
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
    click.echo(
        f"wrote {summary['written']} records to {escape(summary['path'])} "
        f"({summary['records']} in its {len(summary['pools'])} pools)"
    )


@cli.command()
@click.argument("db", type=click.Path(dir_okay=True))
@click.argument("out", type=click.Path(file_okay=False))
@click.option("--format", "fmt", type=click.Choice(["parquet", "csv", "json"]), default="parquet", show_default=True)
@click.option("--pool", "pools", multiple=True, help="Only these pools (repeatable; default all).")
@click.option("--upto", type=int, default=None, help="Frames as they were at this cursor (0..the largest head).")
@click.option("--force", is_flag=True, help="Overwrite files already in OUT.")
@reading_options
def export(db: str, out: str, fmt: str, pools: tuple[str, ...], upto: int | None, force: bool) -> None:
    """Write the records, members, messages and wakes frames (and a summary) to folder OUT.

    OUT and its missing parents are created; files already there are kept
    unless --force is given, and a symlink is never written through.  In CSV,
    a text cell starting with =, +, -, @, tab or carriage return is written
    with a leading ' so that no spreadsheet runs it as a formula (OWASP's
    advice on CSV injection); Parquet and JSON keep every value exactly.
    """
    from .export import export as run

    database = _open(db)
    if upto is not None:
        chosen = [database.pool(p) for p in pools] if pools else list(database.pools())
        highest = max((h.head for h in chosen), default=0)
        if isinstance(upto, bool) or not 0 <= upto <= highest:
            raise CursorError(f"cursor upto={upto} is outside 0..{highest} (the largest head)", path=db)
    for path in run(database, out, format=fmt, pools=list(pools) or None, upto=upto, force=force):
        click.echo(escape(path))


@cli.command()
@click.argument("db", type=click.Path(dir_okay=True))
@click.argument("key")
@click.option("--pool", "pool_id", required=True, help="Pool id.")
@click.option("--upto", type=int, default=None, help="Only records with seq <= UPTO (past the head: the head).")
@click.option(
    "--type",
    "key_type",
    type=click.Choice(["message", "wake", "run", "idempotency_key"]),
    default=None,
    help="What KEY is (default: looked up as a message id, condition id, run id, idempotency key).",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output (the rows and the explanation).")
@reading_options
def history(db: str, key: str, pool_id: str, upto: int | None, key_type: str | None, as_json: bool) -> None:
    """Every record that touched KEY (a message, wake, run or idempotency key), and why.

    \b
    $ poolscope history pools.db --pool pool.alpha msg.alpha.17
    """
    pool = _open(db).pool(pool_id)
    frame = pool.history_of(key, upto, key_type=key_type)  # an upto past the head is the head, as in frames
    explanation = pool.explain(key, None if upto is None or upto >= pool.head else upto, key_type=key_type)
    if as_json:
        rows = json.loads(frame.astype(object).where(frame.notna(), None).to_json(orient="records"))
        sentences = [{"text": s.text, "cursors": list(s.cursors)} for s in explanation.sentences]
        out = {"pool_id": pool_id, "key": key, "key_type": frame.key_type, "records": rows, "explanation": sentences}
        click.echo(_json_text(out, ensure_ascii=False, indent=2))
        return
    click.echo(f"{frame.key_type.replace('_', ' ')} {escape(key)} in {escape(pool_id)}: {len(frame)} record(s)")
    for sentence in explanation.sentences:
        click.echo("  " + escape(sentence.text))
    click.echo("")
    shown = frame.assign(
        status=[
            (f"{b} -> {a}" if isinstance(b, str) and b != a else str(a))
            for b, a in zip(frame["status_before"].astype(object), frame["status_after"].astype(object))
        ],
        changed=[", ".join(c) for c in frame["changed"]],
    )[["cursor", "kind", "role", "id", "status", "sender", "target", "run_id", "changed"]].astype(object)
    click.echo(_escaped(shown.where(shown.notna(), "")).to_string(index=False))


def _escaped(frame: Any) -> Any:
    """A frame whose text cells show control and bidi characters escaped (for ``to_string``)."""
    return frame.astype(object).map(lambda v: escape(v) if isinstance(v, str) else v)


def _split_side(spec: str) -> tuple[str, str]:
    """``DB[::POOL[@CURSOR]]`` -> (DB, POOL[@CURSOR]), at the first ``::`` whose left
    part is a file (a pool id may hold ``::``, and so may a file's name); when none
    is, at the first ``::`` (the error then names that file).

    >>> _split_side("x.db"), _split_side("nowhere.db::team::a@5")
    (('x.db', ''), ('nowhere.db', 'team::a@5'))
    """
    splits = [(spec[:i], spec[i + 2 :]) for i in range(len(spec) - 1) if spec.startswith("::", i)]
    for path, pool_id in [*splits, (spec, "")]:
        if os.path.lexists(path):
            return path, pool_id
    return splits[0] if splits else (spec, "")


def _side(spec: str) -> Any:
    """``DB[::POOL][@CURSOR]`` -> a pool history, or a (pool, cursor) pair."""
    from .errors import InvalidInputError

    path, pool_id = _split_side(spec)
    cursor = None
    tail = pool_id.rpartition("@")[2]
    if "@" in pool_id and tail.isascii() and tail.isdigit():  # "²" is a digit to str.isdigit, not to int()
        pool_id, _, at = pool_id.rpartition("@")
        cursor = int(at)
    database = _open(path)
    if not pool_id:
        if len(database.pool_ids) != 1:
            raise InvalidInputError(
                f"{path} holds {len(database.pool_ids)} pools ({', '.join(database.pool_ids[:10])}): "
                f"say which with {path}::POOL"
            )
        pool_id = database.pool_ids[0]
    pool = database.pool(pool_id)
    return pool if cursor is None else (pool, cursor)


@cli.command()
@click.argument("a")
@click.argument("b")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--context", default=5, show_default=True, help="Aligned events shown before the first divergence.")
@reading_options
def compare(a: str, b: str, as_json: bool, context: int) -> None:
    """Compare two pools, A and B, each DB[::POOL][@CURSOR]: measures side by side, first divergence.

    \b
    $ poolscope compare monday.db::pool.alpha tuesday.db::pool.alpha
    $ poolscope compare pools.db::pool.alpha@500 pools.db::pool.alpha
    """
    from .compare import compare as run

    comparison = run(_side(a), _side(b))
    summary = comparison.summary
    if as_json:
        out = {
            "a": comparison.label_a,
            "b": comparison.label_b,
            "first_divergence": comparison.first_divergence,
            "common_prefix": comparison.common_prefix,
            "summary": json.loads(summary.to_json(orient="records")),
        }
        click.echo(_json_text(out, ensure_ascii=False, indent=2))
        return
    click.echo(f"a = {escape(comparison.label_a)}\nb = {escape(comparison.label_b)}")
    if comparison.first_divergence is None:
        click.echo(f"no divergence: the logs agree event for event ({comparison.common_prefix} events)")
    else:
        ca, cb = comparison.first_divergence
        click.echo(
            f"first divergence after {comparison.common_prefix} agreeing events: "
            f"cursor {'end' if ca is None else ca} in a, {'end' if cb is None else cb} in b"
        )
        aligned = comparison.alignment(context=context, window=context * 2 + 1).head(context * 2 + 1)
        click.echo(_escaped(aligned).to_string(index=False, na_rep=""))
    click.echo("")
    click.echo(
        _escaped(summary).to_string(index=False, na_rep="", float_format=lambda v: f"{v:,.3f}".rstrip("0").rstrip("."))
    )


@cli.command()
@click.argument("db", type=click.Path(dir_okay=True))
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@reading_options
@click.pass_context
def doctor(ctx: click.Context, db: str, as_json: bool) -> None:
    """Check a database for damage and for histories the SDK would not write.

    Exit status: 0 when no error was found (warnings and info allowed), 1 when
    errors were found, 2 when the file cannot be opened as a pool database.
    """
    from .check import check, summarize

    anomalies = check(_open(db))  # a PoolscopeError: "Error: ..." and exit status 2 (see _Group)
    counts = summarize(anomalies)
    if as_json:
        click.echo(
            _json_text(
                {"path": db, "counts": counts, "anomalies": [a.to_dict() for a in anomalies]},
                ensure_ascii=False,
                indent=2,
            )
        )
    else:
        for anomaly in anomalies:
            click.echo(escape(anomaly))
        verdict = "damaged" if counts["error"] else "ok"
        click.echo(
            f"{escape(db)}: {verdict} ({counts['error']} errors, {counts['warning']} warnings, {counts['info']} info)"
        )
    ctx.exit(1 if counts["error"] else 0)


@cli.command("report")
@click.argument("db", type=click.Path(dir_okay=True))
@click.option(
    "-o",
    "--out",
    "out",
    default="report.html",
    show_default=True,
    type=click.Path(dir_okay=False),
    help="The HTML file to write.",
)
@click.option(
    "--pool",
    "pools",
    multiple=True,
    help="A section only for these pools (repeatable; default all); the summary still lists every pool.",
)
@click.option("--force", is_flag=True, help="Overwrite OUT even if it is not an earlier report.")
@reading_options
def report_command(db: str, out: str, pools: tuple[str, ...], force: bool) -> None:
    """Write a self-contained HTML report: summary, timelines, snapshots and anomalies of every pool.

    The page needs nothing but a browser (plots are embedded PNGs); DB is only read.

    \b
    Example:
        poolscope report sample_data/demo.db -o report.html --pool pool.alpha
    """
    _pictures_outside_home([db])
    from .report import report

    written = report(_open(db), out, list(pools) or None, force=force)
    click.echo(escape(written))


@cli.command(context_settings={"ignore_unknown_options": True})
@click.option(
    "--path",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Notebooks folder to open (default: ./notebooks, else the checkout's notebooks/).",
)
@click.option(
    "--app",
    type=click.Choice(["auto", *LAB_APPS]),
    default="auto",
    show_default=True,
    help="Front end: the first installed of lab, notebook, voila; or that one.",
)
@click.option(
    "--port", type=click.IntRange(1, 65535), default=None, help="Port to serve on (default: the front end's)."
)
@click.option("--no-browser", is_flag=True, help="Do not open a browser.")
@click.option("--dry-run", is_flag=True, help="Print the command that would run, and exit.")
@click.argument("extra", nargs=-1, type=click.UNPROCESSED)
@click.pass_context
def lab(
    ctx: click.Context,
    path: Path | None,
    app: str,
    port: int | None,
    no_browser: bool,
    dry_run: bool,
    extra: tuple[str, ...],
) -> None:
    """Open the example notebooks in JupyterLab (or Jupyter Notebook, or Voila).

    Arguments after the options (e.g. "-- --ServerApp.token=xyz") are passed
    to the front end unchanged.  Use --dry-run to see the command.
    """
    from . import lab as labs

    folder = (path or labs.default_notebooks()).resolve()
    try:
        is_folder = folder.is_dir()
    except OSError as error:  # a name too long, a loop of links
        raise click.BadParameter(f"{escape(folder)}: {error.strerror}", param_hint="--path") from None
    if not is_folder:
        raise click.BadParameter(f"{escape(folder)} is not a folder", param_hint="--path")
    found = labs.find_launcher(app)
    if found is None:
        if app == "auto":
            click.echo(labs.INSTALL_HINT, err=True)
        else:
            click.echo(f"{app} is not installed; install it with:  pip install '{labs.PACKAGES[app]}'", err=True)
        ctx.exit(1)
    name, prefix = found
    command = labs.build_command(name, prefix, folder, port=port, browser=not no_browser, extra=extra)
    if dry_run:
        click.echo(shlex.join(command))
        return
    click.echo(f"Starting {name} on {escape(folder)} (Ctrl-C to stop)", err=True)
    ctx.exit(labs.launch(command, folder))


@cli.group()
def cache() -> None:
    """The index cache that makes a second open of a pool instant.

    It lives in $POOLSCOPE_CACHE_DIR, else $XDG_CACHE_HOME/poolscope, else
    ~/.cache/poolscope (never beside a database); its size is capped by
    $POOLSCOPE_CACHE_SIZE (default 4GB, least recently used entries go first).
    """


def _size(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1000
    return f"{n:,.1f} GB"  # pragma: no cover


def _folder_state(folder: Path) -> str:
    """``ok``, ``missing`` (made on first save), ``not a folder`` or ``cannot be read``."""
    import os

    if not os.path.lexists(folder):
        return "missing"
    if not os.path.isdir(folder):
        return "not a folder"
    if not os.access(folder, os.R_OK | os.X_OK):
        return "cannot be read"
    return "ok"


@cache.command("info")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def cache_info(as_json: bool) -> None:
    """Entries: which database and pool each belongs to, records, size, last use."""
    import time

    from .cache import default_dir, entries, max_bytes

    folder = default_dir()
    found = entries(folder)
    total = sum(e.bytes for e in found)
    state = _folder_state(folder)
    if as_json:
        rows = [
            {
                "db": e.db,
                "pool_id": e.pool_id,
                "records": e.records,
                "head": e.head,
                "bytes": e.bytes,
                "last_used": e.last_used,
                "db_exists": e.db_exists,
                "format": e.format,
            }
            for e in found
        ]
        document = {"folder": str(folder), "state": state, "bytes": total, "max_bytes": max_bytes(), "entries": rows}
        click.echo(_json_text(document))
        return
    click.echo(
        f"{escape(folder)}: {len(found)} entr{'y' if len(found) == 1 else 'ies'}, {_size(total)} "
        f"(cap {_size(max_bytes())})" + ("" if state in ("ok", "missing") else f" -- {state}: the index cache is off")
    )
    for e in found:
        used = time.strftime("%Y-%m-%d %H:%M", time.localtime(e.last_used))
        gone = "" if e.db_exists else "  (database gone)"
        click.echo(f"  {escape(e.db)}  {escape(e.pool_id)}  {e.records:,} records  {_size(e.bytes)}  used {used}{gone}")


@cache.command("clear")
@click.argument("db", required=False, type=click.Path(dir_okay=False))
def cache_clear(db: str | None) -> None:
    """Remove every entry, or only those of database DB (it need not exist any more)."""
    from .cache import clear, default_dir

    removed = clear(db)
    click.echo(f"removed {removed} entr{'y' if removed == 1 else 'ies'} from {escape(default_dir())}")


def main() -> None:  # pragma: no cover
    cli()


# ------------------------------------------------------------------- fleets
@cli.group("fleet")
def fleet_group() -> None:
    """Many databases (one per host or service) read as one.

    SOURCES are database files, folders (searched recursively) and glob
    patterns; files found that are not SDK databases are listed as skipped.
    """


_SOURCES = click.argument("sources", nargs=-1, required=True)
_WORKERS = click.option("--workers", type=int, default=None, help="Worker processes (default: one per core).")


def _fleet(sources: tuple[str, ...], workers: int | None):
    from .fleet import fleet

    return fleet(list(sources), workers=workers, **_limits())


def _problems(hosts: Any) -> tuple[list[dict], list[dict]]:
    errors = [{"source": e.source, "error": type(e.error).__name__, "problem": e.error.problem} for e in hosts.errors]
    skipped = [{"source": s.source, "reason": s.reason} for s in hosts.skipped]
    return errors, skipped


def _echo_problems(errors: list[dict], skipped: list[dict]) -> None:
    for error in errors:
        click.echo(escape(f"error: {error['source']}: {error['error']}: {error['problem']}"))
    for item in skipped:
        click.echo(escape(f"skipped: {item['source']}: {item['reason']}"))


@fleet_group.command("info")
@_SOURCES
@_WORKERS
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@fleet_reading_options
def fleet_info(sources: tuple[str, ...], workers: int | None, as_json: bool) -> None:
    """Databases, and per pool: head, records, members, messages, wakes, failures, anomalies."""
    with _fleet(sources, workers) as hosts:
        pools = hosts.pools
        errors, skipped = _problems(hosts)
        columns = ["source", "pool_id", "head", "records", "members", "messages", "wakes", "failures", "anomalies"]
        if as_json:
            rows = pools[columns].astype({"source": object}).to_dict("records")
            document = {"databases": hosts.databases, "pools": rows, "errors": errors, "skipped": skipped}
            click.echo(_json_text(document, ensure_ascii=False, indent=2, default=int))
            return
        click.echo(
            f"{len(hosts.databases)} database(s), {len(pools)} pool(s), {int(pools['records'].sum()):,} records"
            f"{f', {len(errors)} unreadable' if errors else ''}{f', {len(skipped)} skipped' if skipped else ''}"
        )
        if len(pools):
            click.echo(_escaped(pools[columns]).to_string(index=False))
        _echo_problems(errors, skipped)


@fleet_group.command("doctor")
@_SOURCES
@_WORKERS
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@fleet_reading_options
@click.pass_context
def fleet_doctor(ctx: click.Context, sources: tuple[str, ...], workers: int | None, as_json: bool) -> None:
    """Check every database of the fleet (see ``poolscope doctor``).

    Exit status 1 when any error is found (an anomaly of severity error, or a
    database that cannot be read), else 0.
    """
    with _fleet(sources, workers) as hosts:
        anomalies = hosts.check()
        errors, skipped = _problems(hosts)
    counts = {s: int((anomalies["severity"] == s).sum()) for s in ("error", "warning", "info")}
    failed = bool(counts["error"] or errors)
    if as_json:
        rows = [
            {
                "source": str(r.source),
                "pool_id": None if pd_isna(r.pool_id) else r.pool_id,
                "seq": None if pd_isna(r.seq) else int(r.seq),
                "severity": str(r.severity),
                "code": r.code,
                "message": r.message,
            }
            for r in anomalies.itertuples(index=False)
        ]
        document = {"databases": len(hosts.databases), "counts": counts, "anomalies": rows}
        document.update({"errors": errors, "skipped": skipped})
        click.echo(_json_text(document, ensure_ascii=False, indent=2))
    else:
        for r in anomalies.itertuples(index=False):
            where = "" if pd_isna(r.pool_id) else f" (pool {r.pool_id!r}{'' if pd_isna(r.seq) else f', seq {r.seq}'})"
            click.echo(escape(f"{r.source}: {r.severity}: {r.code}{where}: {r.message}"))
        _echo_problems(errors, skipped)
        verdict = "damaged" if failed else "ok"
        click.echo(
            f"{len(hosts.databases)} database(s): {verdict} ({counts['error']} errors, {counts['warning']} warnings, "
            f"{counts['info']} info; {len(errors)} unreadable, {len(skipped)} skipped)"
        )
    ctx.exit(1 if failed else 0)


def pd_isna(value: Any) -> bool:
    import pandas as pd

    return bool(pd.isna(value))


@fleet_group.command("export")
@_SOURCES
@click.argument("out", nargs=1, type=click.Path(file_okay=False))
@_WORKERS
@click.option("--upto", type=int, default=None, help="Frames as they were at this cursor (per pool).")
@fleet_reading_options
@click.pass_context
def fleet_export(ctx: click.Context, sources: tuple[str, ...], out: str, workers: int | None, upto: int | None) -> None:
    """Write the fleet's frames as a hive-partitioned Parquet dataset in folder OUT.

    OUT/<frame>/source=<path>/pool_id=<pool>/part-0.parquet (the files hold
    the true source and pool_id; a folder name too long for a file system is
    shortened); exporting again rewrites only the pools that changed.  Exit
    status 2 when a database's partitions could not be written.
    """
    with _fleet(sources, workers) as hosts:
        done = hosts.export(out, upto=upto)
        errors, skipped = _problems(hosts)
    click.echo(
        f"{escape(done['path'])}: {done['partitions']} partition(s) written, {done['unchanged']} unchanged, "
        f"{done['removed']} removed"
    )
    _echo_problems(errors, skipped)
    for failure in done["failed"]:
        click.echo(escape(f"Error: {failure.source}: not written: {failure.error}"), err=True)
    if done["failed"]:
        ctx.exit(2)


@fleet_group.command("report")
@_SOURCES
@_WORKERS
@click.option(
    "-o", "--out", "out", default="fleet.html", show_default=True, type=click.Path(dir_okay=False), help="HTML file."
)
@click.option("--force", is_flag=True, help="Overwrite OUT even if it is not an earlier fleet report.")
@fleet_reading_options
def fleet_report(sources: tuple[str, ...], workers: int | None, out: str, force: bool) -> None:
    """Write one self-contained HTML page ranking the fleet's pools by failures
    and anomalies, with per-source and per-agent breakdowns and plots.

    An existing OUT is replaced only if it is an earlier fleet report (or with
    --force), and never through a symlink."""
    _pictures_outside_home(list(sources))
    from .fleet.report import report

    with _fleet(sources, workers) as hosts:
        click.echo(escape(report(hosts, out, force=force)))
