"""The `repmon` command: thin wrappers over the same functions the dashboard calls."""

from __future__ import annotations

import json
import sys
import time as time_module
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

import click

from monitor import config as config_module
from monitor.collectors.importers import FORMATS as IMPORT_FORMATS
from monitor.config import ConfigError, Settings
from monitor.models import (
    LABELS,
    Alert,
    CollectionRun,
    MentionQuery,
    latest_run_per_source,
    utcnow,
)
from monitor.pipeline import send_alert
from monitor.store import Store, redact_url


class Context:
    """What every command needs: the settings, loaded once, and the store, opened on demand."""

    def __init__(self, config_path: str | None, database: str | None) -> None:
        self.config_path = config_path
        self.database = database
        self._settings: Settings | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = config_module.load_settings(
                self.config_path, database_url=self.database
            )
        return self._settings

    def store(self) -> Store:
        return Store(self.settings.database_url)


def _fail_on_config_error(func: Any) -> Any:
    """Turn a ConfigError into one clear line and exit status 2, never a traceback."""

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except ConfigError as exc:
            raise click.ClickException(str(exc)) from None

    wrapper.__name__ = func.__name__
    wrapper.__doc__ = func.__doc__
    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    help="monitor.toml to use (default: $MONITOR_CONFIG, then ./monitor.toml, else the demo).",
)
@click.option(
    "--database",
    help="Database URL, overriding config and $MONITOR_DATABASE_URL "
    "(sqlite:///path.db or postgresql://user@host/db).",
)
@click.pass_context
def main(ctx: click.Context, config_path: str | None, database: str | None) -> None:
    """Reputation and sentiment monitor for a company in a data-breach crisis."""
    ctx.obj = Context(config_path, database)


@main.command()
@click.argument("source", type=click.File("r", encoding="utf-8"), default="-")
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["jsonl", "table"]),
    default="jsonl",
    show_default=True,
    help="jsonl: one JSON object per input line; table: aligned columns for reading.",
)
def score(source: IO[str], output_format: str) -> None:
    """Score one text per line of SOURCE (a file, or - for standard input)."""
    from monitor.scoring import default_scorer

    scorer = default_scorer()
    for text in _lines(source):
        result = scorer.score(text)
        if output_format == "jsonl":
            record = {
                "text": text,
                "compound": result.compound,
                "label": result.label,
                "topics": list(result.topics),
            }
            click.echo(json.dumps(record, ensure_ascii=False))
        else:
            topics = ",".join(result.topics) or "-"
            click.echo(f"{result.compound:+.3f}  {result.label:<8}  {topics:<30}  {text}")


def _lines(stream: IO[str]) -> Iterator[str]:
    for line in stream:
        text = line.rstrip("\r\n")
        if text.strip():
            yield text


@main.command()
@click.option(
    "--seed", type=int, default=None, help="Random seed (default: the bundled scenario's)."
)
@click.pass_obj
@_fail_on_config_error
def demo(obj: Context, seed: int | None) -> None:
    """Build the bundled demo scenario (a fictional bank's breach) into the demo database.

    Uses --database or $MONITOR_DATABASE_URL when given, else data/demo.db. Running it
    again adds nothing.
    """
    from monitor import demo as demo_scenario

    settings = config_module.demo_settings(obj.database)
    store = Store(settings.database_url)
    with click.progressbar(length=3100, label="Building demo", file=sys.stderr) as bar:
        done = 0

        def advance(count: int) -> None:
            nonlocal done
            bar.update(count - done)
            done = count

        result = demo_scenario.build(store, seed=seed or demo_scenario.SEED, progress=advance)
    click.echo(
        f"Demo scenario in {redact_url(settings.database_url)}: {result.new} new, "
        f"{result.updated} updated, {result.unchanged} unchanged; "
        f"{store.count_mentions()} mentions from {', '.join(store.sources())}."
    )


@main.command()
@click.pass_obj
@_fail_on_config_error
def status(obj: Context) -> None:
    """Show which config, brand and database are in use, and what is stored."""
    settings = obj.settings
    store = obj.store()
    bounds = store.time_bounds()
    click.echo(f"config:    {settings.config_path or '(none: demo scenario)'}")
    click.echo(f"brand:     {settings.brand.name}")
    click.echo(f"database:  {redact_url(settings.database_url)}")
    click.echo(f"mentions:  {store.count_mentions()}")
    if bounds:
        click.echo(f"published: {bounds[0]:%Y-%m-%d %H:%M} to {bounds[1]:%Y-%m-%d %H:%M} UTC")
    click.echo(f"sources:   {', '.join(store.sources()) or '-'}")
    for event in settings.events:
        click.echo(f"event:     {event.at:%Y-%m-%d %H:%M} UTC  {event.kind:<10} {event.label}")


def _print_runs(runs: list[CollectionRun]) -> None:
    for run in runs:
        counts = (
            f"{run.new} new, {run.updated} updated, {run.unchanged} unchanged, "
            f"{run.duplicates} duplicates, {run.skipped} skipped"
        )
        click.echo(f"{run.source:<12} {run.status:<8} {counts}")
        for line in run.error.splitlines():
            click.echo(f"{'':<12} ! {line}")


@main.command()
@click.option("--source", "sources", multiple=True, help="Only this source; repeat for several.")
@click.pass_obj
@_fail_on_config_error
def collect(obj: Context, sources: tuple[str, ...]) -> None:
    """Run every enabled source once and print what each stored or why it failed."""
    from monitor.pipeline import collect as collect_all
    from monitor.pipeline import enabled_sources

    settings = obj.settings
    if not sources and not enabled_sources(settings):
        raise click.ClickException(
            "No source is configured. Add a [sources.NAME] table to monitor.toml "
            "(see `repmon sources` and the README, Sources)."
        )
    runs = collect_all(obj.store(), settings, only=sources, on_progress=_stderr)
    _print_runs(runs)
    if any(run.status == "failed" for run in runs):
        sys.exit(1)


def _stderr(message: str) -> None:
    click.echo(message, err=True)


@main.command()
@click.option(
    "--every", default="15m", show_default=True, help='Time between runs, e.g. "15m", "1h".'
)
@click.option("--source", "sources", multiple=True, help="Only this source; repeat for several.")
@click.option("--times", type=int, default=0, help="Stop after this many runs (0: never).")
@click.pass_obj
@_fail_on_config_error
def watch(obj: Context, every: str, sources: tuple[str, ...], times: int) -> None:
    """Collect on a schedule until stopped (Ctrl-C); a failing source never stops the others."""
    from monitor.collectors import parse_duration
    from monitor.pipeline import collect as collect_all

    try:
        interval = parse_duration(every)
    except ValueError:
        raise click.BadParameter(
            f"{every!r} is not a duration like 15m or 1h", param_hint="--every"
        ) from None
    settings, store = obj.settings, obj.store()
    done = 0
    try:
        while True:
            started = utcnow()
            try:
                _print_runs(collect_all(store, settings, only=sources))
            except Exception as failure:  # keep watching: the next run may succeed
                click.echo(f"{started:%Y-%m-%d %H:%M:%S} run failed: {failure}", err=True)
            done += 1
            if times and done >= times:
                return
            pause = interval - (utcnow() - started)
            click.echo(f"next run in {max(pause.total_seconds(), 0):.0f} s", err=True)
            time_module.sleep(max(pause.total_seconds(), 0))
    except KeyboardInterrupt:
        click.echo("stopped", err=True)


@main.command("sources")
@click.pass_obj
@_fail_on_config_error
def sources_command(obj: Context) -> None:
    """List the sources this program can collect, which are enabled, and their last run."""
    from monitor.collectors import REGISTRY
    from monitor.pipeline import enabled_sources

    enabled = set(enabled_sources(obj.settings))
    last = latest_run_per_source(obj.store().recent_runs(200))
    for name, collector in sorted(REGISTRY.items()):
        state = "enabled" if name in enabled else "-"
        run = last.get(name)
        seen = f"last run {run.started_at:%Y-%m-%d %H:%M} UTC: {run.status}" if run else "never run"
        click.echo(f"{name:<12} {state:<8} {seen:<40} {collector.description}")


@main.command("import")
@click.argument("paths", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(IMPORT_FORMATS),
    default=None,
    help="File format (default: from the profile, else csv).",
)
@click.option(
    "--source",
    default=None,
    help="Source name to store the rows under (default: twitter, reddit or import).",
)
@click.option(
    "--map",
    "mapping",
    multiple=True,
    metavar="COLUMN=FIELD",
    help="Read COLUMN as FIELD (text, title, author, url, published_at, external_id, "
    "score, comments, rating, followers); repeatable.",
)
@click.option(
    "--profile",
    default=None,
    help="Use the [imports.PROFILE] table of monitor.toml (format, source, map).",
)
@click.option(
    "--match/--no-match",
    default=False,
    show_default=True,
    help="Keep only rows that name the brand.",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help="Processes that read and score rows while this one writes (default: one per CPU "
    "up to 4, for 4,000 lines or more in all, on Linux; 1 keeps everything in this process).",
)
@click.pass_obj
@_fail_on_config_error
def import_command(
    obj: Context,
    paths: tuple[Path, ...],
    fmt: str | None,
    source: str | None,
    mapping: tuple[str, ...],
    profile: str | None,
    match: bool,
    workers: int | None,
) -> None:
    """Import backfills or vendor exports (several files: one import, each file its own run);
    importing the same file again changes nothing."""
    from monitor.collectors.importers import ImportFileError, parse_mapping
    from monitor.pipeline import FileToImport, import_files

    settings = obj.settings
    options: dict[str, object] = {}
    if profile:
        if profile not in settings.imports:
            known = ", ".join(settings.imports) or "none"
            raise click.BadParameter(
                f"no [imports.{profile}] in the config (profiles: {known})", param_hint="--profile"
            )
        options = dict(settings.imports[profile])
    chosen_format = fmt or str(options.get("format", "csv"))
    if chosen_format not in IMPORT_FORMATS:
        raise click.BadParameter(
            f"format {chosen_format!r} is not one of {', '.join(IMPORT_FORMATS)}",
            param_hint="--profile",
        )
    try:
        columns = parse_mapping(options.get("map", {}))  # type: ignore[arg-type]
        columns.update(parse_mapping(mapping))
    except ValueError as problem:
        raise click.BadParameter(str(problem), param_hint="--map") from None
    chosen_source = source or (str(options["source"]) if "source" in options else None)
    files = [FileToImport(path, chosen_format, chosen_source, columns) for path in paths]
    total = sum(_count_lines(path) for path in paths) if chosen_format != "xlsx" else 0
    label = f"Importing {paths[0].name}" if len(paths) == 1 else f"Importing {len(paths)} files"
    with click.progressbar(length=max(total, 1), label=label, file=sys.stderr) as bar:
        done = 0

        def advance(rows: int) -> None:
            nonlocal done
            bar.update(rows - done)
            done = rows

        try:
            reports = import_files(
                obj.store(), settings, files, match=match, on_progress=advance, workers=workers
            )
        except ImportFileError as failure:
            raise click.ClickException(str(failure)) from None
    for report in reports:
        if report.error:
            continue
        click.echo(report.summary())
        for line in report.problems:
            click.echo(f"  ! {line}", err=True)
        if report.failed > len(report.problems):
            click.echo(f"  ! ... and {report.failed - len(report.problems)} more", err=True)
    unreadable = [report.error for report in reports if report.error]
    if unreadable:
        raise click.ClickException("\n".join(unreadable))


def _count_lines(path: Path) -> int:
    if not path.is_file():
        return 0
    with path.open("rb") as handle:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 20), b""))


@main.group()
def alerts() -> None:
    """Alert rules: check them now, replay them over history, list and acknowledge alerts."""


def _alert_json(alert: Alert) -> dict[str, object]:
    return {
        "rule": alert.rule,
        "type": alert.kind,
        "fired_at": alert.fired_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "severity": alert.severity,
        "value": alert.value,
        "threshold": alert.threshold,
        "message": alert.message,
        "evidence": alert.evidence,
    }


def _print_alert(alert: Alert) -> None:
    click.echo(
        f"{alert.fired_at:%Y-%m-%d %H:%M} UTC  [{alert.severity}] {alert.rule}: {alert.message}"
    )
    for item in alert.evidence[:3]:
        snippet = " ".join(f"{item.get('title', '')} {item.get('text', '')}".split())[:100]
        click.echo(
            f"    {item.get('source')} {item.get('published_at')}: {snippet} {item.get('url', '')}"
        )


@alerts.command("rules")
@click.pass_obj
@_fail_on_config_error
def alerts_rules(obj: Context) -> None:
    """List the alert rules in force (the config's, or the defaults), and which are quiet
    after firing, until when."""
    from monitor.alerts.engine import rule_states
    from monitor.alerts.rules import describe_rule

    for state in rule_states(obj.store(), obj.settings):
        line = describe_rule(state.rule)
        if state.quiet_until is not None:
            line += f" (quiet until {state.quiet_until:%Y-%m-%d %H:%M} UTC)"
        click.echo(line)


@alerts.command("check")
@click.option("--no-send", is_flag=True, help="Store what fires but send no notification.")
@click.pass_obj
@_fail_on_config_error
def alerts_check(obj: Context, no_send: bool) -> None:
    """Evaluate every rule now; store and send what fires outside its quiet period."""
    from monitor.alerts import engine

    settings = obj.settings
    result = engine.check(obj.store(), settings, send=None if no_send else send_alert)
    for alert in result.fired:
        _print_alert(alert)
    if not result.fired:
        click.echo("No rule fired.")
    for failure in result.failed:
        click.echo(f"  ! not delivered: {failure}", err=True)


@alerts.command("replay")
@click.option("--since", required=True, help="Start (UTC), YYYY-MM-DD or ISO 8601.")
@click.option("--until", required=True, help="End (UTC; a bare date includes that day).")
@click.option("--step", default="1h", show_default=True, help="How often to evaluate the rules.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of alerts.")
@click.pass_obj
@_fail_on_config_error
def alerts_replay(obj: Context, since: str, until: str, step: str, as_json: bool) -> None:
    """List when each rule would have fired over stored history (nothing is stored or sent)."""
    from monitor.alerts import engine
    from monitor.models import parse_duration

    start = _parse_day(since, "--since")
    end = _parse_day(until, "--until", end=True)
    if start is None or end is None:  # both options are required, so click has them
        raise click.UsageError("--since and --until are required")
    try:
        every = parse_duration(step)
    except ValueError:
        raise click.BadParameter(
            f"{step!r} is not a duration like 1h", param_hint="--step"
        ) from None
    fired = engine.replay(obj.store(), obj.settings, start, end, step=every)
    if as_json:
        click.echo(json.dumps([_alert_json(a) for a in fired], indent=2, ensure_ascii=False))
        return
    for alert in fired:
        _print_alert(alert)
    window = f"{start:%Y-%m-%d %H:%M} and {end:%Y-%m-%d %H:%M} UTC"
    click.echo(f"{len(fired)} alerts would have fired between {window}.")


@alerts.command("list")
@click.option("--open", "only_open", is_flag=True, help="Only alerts not yet acknowledged.")
@click.option("--limit", type=int, default=50, show_default=True, help="How many, newest first.")
@click.pass_obj
@_fail_on_config_error
def alerts_list(obj: Context, only_open: bool, limit: int) -> None:
    """List stored alerts, newest first."""
    for alert in obj.store().alerts(unacknowledged=only_open, limit=limit):
        state = f"acknowledged: {alert.ack_note}" if alert.acknowledged_at else "open"
        when = f"{alert.fired_at:%Y-%m-%d %H:%M}"
        click.echo(f"#{alert.id:<5} {when} [{alert.severity}] {alert.rule} ({state})")


@alerts.command("ack")
@click.argument("alert_id", type=int)
@click.option("--note", default="", help="What was done about it.")
@click.pass_obj
@_fail_on_config_error
def alerts_ack(obj: Context, alert_id: int, note: str) -> None:
    """Acknowledge alert ALERT_ID with a note."""
    if not obj.store().acknowledge_alert(alert_id, note):
        raise click.ClickException(f"There is no alert #{alert_id} (see `repmon alerts list`).")
    click.echo(f"Alert #{alert_id} acknowledged.")


@main.command()
@click.option(
    "--out",
    "out",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="FILE.html (self-contained) or FILE.pdf (printed by Chromium).",
)
@click.option(
    "--window",
    "window",
    default=None,
    help='Days of data the briefing covers, e.g. "7d" or "2w" (default: the dashboard\'s).',
)
@click.option(
    "--send",
    is_flag=True,
    help="Also send it through the notification channels ([alerts] notify in secrets).",
)
@click.pass_obj
@_fail_on_config_error
def brief(obj: Context, out: Path, window: str | None, send: bool) -> None:
    """Write the one-page leadership briefing, and optionally send it (one cron line a day)."""
    from monitor import briefing as briefing_module
    from monitor.alerts import channels

    suffix = out.suffix.lower()
    if suffix not in (".html", ".pdf"):
        raise click.BadParameter("the briefing is written as .html or .pdf", param_hint="--out")
    try:
        days = briefing_module.parse_window_days(window) if window else None
    except ValueError as problem:
        raise click.BadParameter(str(problem), param_hint="--window") from None
    settings = obj.settings
    result = briefing_module.build_briefing(obj.store(), settings, days=days)
    html = briefing_module.render_html(result)
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        if suffix == ".pdf":
            briefing_module.render_pdf(html, out)
        else:
            out.write_text(html, encoding="utf-8")
    except briefing_module.BriefingError as problem:
        raise click.ClickException(str(problem)) from None
    click.echo(f"Wrote the briefing to {out}.")
    if send:
        urls = channels.notify_urls(settings)
        if not urls:
            raise click.ClickException(
                "No notification channel is configured: add [alerts] notify = [...] to "
                ".streamlit/secrets.toml or set $MONITOR_NOTIFY_URLS."
            )
        delivery = channels.send(briefing_module.briefing_message(result), urls, attach=[out])
        click.echo(f"Sent to {len(delivery.sent)} channel(s).")
        for failure in delivery.failures:
            click.echo(f"  ! not delivered: {failure}", err=True)
        if delivery.failed:
            sys.exit(1)


@main.group()
def export() -> None:
    """Write data out of the monitor as CSV or XLSX, safe to open in a spreadsheet.

    Every export carries its provenance (brand, filters, window, sources, scorer, config
    hash, time, row count, SHA-256 of the data): FILE.manifest.json beside a CSV, an
    "About" sheet inside an XLSX. See docs/exports.md.
    """


def _parse_day(value: str | None, option: str, *, end: bool = False) -> datetime | None:
    """Return a CLI date or time as UTC; a bare --until date means the end of that day."""
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not a date; use YYYY-MM-DD or an ISO 8601 time.", param_hint=option
        ) from None
    parsed = parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    is_bare_date = len(value.strip()) == len("YYYY-MM-DD")
    return parsed + timedelta(days=1) if end and is_bare_date else parsed


def _check_out(_ctx: click.Context, _param: click.Parameter, value: Path) -> Path:
    from monitor.reports import ExportError, format_of

    try:
        format_of(value)
    except ExportError as problem:
        raise click.BadParameter(f"{problem}.") from None
    return value


def _out_option(func: Any) -> Any:
    return click.option(
        "--out",
        type=click.Path(dir_okay=False, path_type=Path),
        required=True,
        callback=_check_out,
        help="File to write: FILE.csv (with FILE.manifest.json beside it) or FILE.xlsx "
        '(with an "About" sheet).',
    )(func)


def _file_options(func: Any) -> Any:
    func = click.option(
        "--redact-authors",
        is_flag=True,
        help="Replace author handles, and @handles in text and links, with pseudonyms that "
        "hold within this file only: for exports that leave the team.",
    )(func)
    return click.option(
        "--bom",
        is_flag=True,
        help="Write the CSV as UTF-8 with a byte-order mark, so Excel shows accents and emoji.",
    )(func)


def _filter_options(func: Any) -> Any:
    options = [
        click.option("--since", help="First day (UTC, inclusive), YYYY-MM-DD or ISO 8601."),
        click.option("--until", help="Last day (UTC, inclusive for a date; exclusive for a time)."),
        click.option(
            "--source", "sources", multiple=True, help="Only this source; repeat for several."
        ),
        click.option(
            "--label",
            "labels",
            multiple=True,
            type=click.Choice(LABELS),
            help="Only this label; repeat for several.",
        ),
        click.option("--topic", "topics", multiple=True, help="Only mentions with this topic id."),
        click.option(
            "--search", default="", help="Only mentions whose title or text contains this."
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _filter_query(
    since: str | None,
    until: str | None,
    sources: tuple[str, ...],
    labels: tuple[str, ...],
    topics: tuple[str, ...],
    search: str,
) -> MentionQuery:
    return MentionQuery(
        since=_parse_day(since, "--since"),
        until=_parse_day(until, "--until", end=True),
        sources=sources,
        labels=labels,
        topics=topics,
        search=search,
    )


def _write_export(obj: Context, table: Any, out: Path, bom: bool, redact_authors: bool) -> None:
    """Write `table` to `out` with its provenance and say what was written."""
    from monitor.reports import ExportError, ExportOptions, Provenance, export_to_path

    if bom and out.suffix.lower() == ".xlsx":
        raise click.UsageError(
            "--bom is for a CSV; an XLSX needs no byte-order mark (it is always UTF-8)."
        )
    options = ExportOptions(bom=bom, redact_authors=redact_authors)
    try:
        result = export_to_path(table, out, Provenance.from_settings(obj.settings), options)
    except ExportError as problem:
        raise click.ClickException(str(problem)) from None
    except OSError as problem:
        raise click.ClickException(f"Cannot write {out}: {problem.strerror or problem}.") from None
    nouns = {"mentions": "mentions", "alerts": "alerts"}
    where = (
        f"manifest {result.manifest_path}"
        if result.manifest_path
        else "provenance on its About sheet"
    )
    click.echo(
        f"Wrote {result.rows:,} {nouns.get(table.kind, 'rows')} to {out} "
        f"({table.query.describe()}); {where}; sha256 {result.manifest['sha256']}."
    )


@export.command("mentions")
@_out_option
@_filter_options
@_file_options
@click.pass_obj
@_fail_on_config_error
def export_mentions_command(
    obj: Context,
    out: Path,
    since: str | None,
    until: str | None,
    sources: tuple[str, ...],
    labels: tuple[str, ...],
    topics: tuple[str, ...],
    search: str,
    bom: bool,
    redact_authors: bool,
) -> None:
    """Write the mentions matching the filters: the same rows as the dashboard download."""
    from monitor.reports import EXCEL_MAX_ROWS, mentions_table

    query = _filter_query(since, until, sources, labels, topics, search)
    store = obj.store()
    if out.suffix.lower() == ".xlsx":
        found = store.count_mentions(query)
        if found > EXCEL_MAX_ROWS:
            raise click.ClickException(
                f"{found:,} mentions match, more than Excel's {EXCEL_MAX_ROWS:,} rows: "
                "write a .csv, or narrow the filters."
            )
    _write_export(obj, mentions_table(store, query), out, bom, redact_authors)


@export.command("daily")
@_out_option
@_filter_options
@_file_options
@click.pass_obj
@_fail_on_config_error
def export_daily_command(
    obj: Context,
    out: Path,
    since: str | None,
    until: str | None,
    sources: tuple[str, ...],
    labels: tuple[str, ...],
    topics: tuple[str, ...],
    search: str,
    bom: bool,
    redact_authors: bool,
) -> None:
    """Write the daily series (whole UTC days): volume by label, net and mean sentiment, mean
    rating, for all sources and for each; by default from the first day of data to the last."""
    from dataclasses import replace

    from monitor.reports import daily_table, daily_window

    query = _filter_query(since, until, sources, labels, topics, search)
    store = obj.store()
    window = daily_window(store.time_bounds(), query.since, query.until)
    if window is not None:
        query = replace(query, since=window.start, until=window.end)
    _write_export(
        obj, daily_table(store.daily_counts(query), window, query), out, bom, redact_authors
    )


@export.command("event-study")
@_out_option
@click.option(
    "--event",
    "event_label",
    default=None,
    help="Only the event with this label (default: every event, the disclosure first).",
)
@click.option("--since", help="Only events at or after this time (UTC), YYYY-MM-DD or ISO 8601.")
@click.option("--until", help="Only events before this time (UTC; a bare date includes that day).")
@click.option("--source", "sources", multiple=True, help="Only this source; repeat for several.")
@click.option(
    "--after",
    "after_days",
    type=click.IntRange(min=1),
    multiple=True,
    help="Days after the event to compare with the baseline; repeat for several "
    "(default: 1, 7 and 28).",
)
@click.option(
    "--baseline-days",
    type=click.IntRange(min=1),
    default=28,
    show_default=True,
    help="Whole UTC days before the event's day that form the baseline.",
)
@click.option(
    "--resamples",
    type=click.IntRange(min=100),
    default=2000,
    show_default=True,
    help="Bootstrap and permutation resamples (the seed is fixed: reruns agree).",
)
@_file_options
@click.pass_obj
@_fail_on_config_error
def export_event_study_command(
    obj: Context,
    out: Path,
    event_label: str | None,
    since: str | None,
    until: str | None,
    sources: tuple[str, ...],
    after_days: tuple[int, ...],
    baseline_days: int,
    resamples: int,
    bom: bool,
    redact_authors: bool,
) -> None:
    """Write the event study: one row per event, window, scope and metric (before, after,
    difference, CI, p), plus topic and recovery rows: the numbers of `repmon report event-study`."""
    from monitor import impact
    from monitor.reports import event_study_table

    events = impact.ordered_events(obj.settings.events)
    if event_label is not None:
        try:
            events = [impact.find_event(events, event_label)]
        except LookupError as problem:
            raise click.BadParameter(str(problem), param_hint="--event") from None
    start, end = _parse_day(since, "--since"), _parse_day(until, "--until", end=True)
    events = [e for e in events if (start is None or e.at >= start) and (end is None or e.at < end)]
    if not events:
        raise click.ClickException(
            "No event to study"
            + (" in that window" if since or until else "")
            + '. Events are [[events]] tables (at, label, kind = "disclosure") in monitor.toml '
            "(see the README, Configuration)."
        )
    options = impact.StudyOptions(
        baseline_days=baseline_days,
        after_days=after_days or impact.AFTER_DAYS,
        sources=sources,
        n_resamples=resamples,
    )
    store = obj.store()
    studies = [impact.run_event_study(store, e, options).to_dict() for e in events]
    _write_export(obj, event_study_table(studies, sources=sources), out, bom, redact_authors)


@export.command("alerts")
@_out_option
@click.option("--since", help="Only alerts fired at or after this (UTC), YYYY-MM-DD or ISO 8601.")
@click.option("--until", help="Only alerts fired before this (UTC; a bare date includes that day).")
@click.option("--open", "only_open", is_flag=True, help="Only alerts not yet acknowledged.")
@_file_options
@click.pass_obj
@_fail_on_config_error
def export_alerts_command(
    obj: Context,
    out: Path,
    since: str | None,
    until: str | None,
    only_open: bool,
    bom: bool,
    redact_authors: bool,
) -> None:
    """Write the alert history, oldest first: each alert with its evidence's count and top
    mention (source, time, engagement, text, link)."""
    from monitor.reports import alerts_table

    start, end = _parse_day(since, "--since"), _parse_day(until, "--until", end=True)
    store = obj.store()
    fired = store.alerts(since=start, until=end, unacknowledged=only_open, limit=None)
    table = alerts_table(
        fired, since=start, until=end, sources=tuple(store.sources()), open_only=only_open
    )
    _write_export(obj, table, out, bom, redact_authors)


@main.group()
def report() -> None:
    """Analyses of the stored mentions: the same numbers as the dashboard, in the terminal."""


@report.command("event-study")
@click.option(
    "--event",
    "event_label",
    default=None,
    help="Only the event with this label (default: every event, the disclosure first).",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print the full result as JSON: the numbers the Impact page shows.",
)
@click.option(
    "--baseline-days",
    type=click.IntRange(min=1),
    default=28,
    show_default=True,
    help="Whole UTC days before the event's day that form the baseline.",
)
@click.option(
    "--after",
    "after_days",
    type=click.IntRange(min=1),
    multiple=True,
    help="Days after the event to compare with the baseline; repeat for several "
    "(default: 1, 7 and 28).",
)
@click.option("--source", "sources", multiple=True, help="Only this source; repeat for several.")
@click.option(
    "--resamples",
    type=click.IntRange(min=100),
    default=2000,
    show_default=True,
    help="Bootstrap and permutation resamples (the seed is fixed: reruns agree).",
)
@click.pass_obj
@_fail_on_config_error
def event_study_command(
    obj: Context,
    event_label: str | None,
    as_json: bool,
    baseline_days: int,
    after_days: tuple[int, ...],
    sources: tuple[str, ...],
    resamples: int,
) -> None:
    """Before/after study of each event: changes with 95% CIs and p, recovery, topics."""
    from monitor import impact

    events = impact.ordered_events(obj.settings.events)
    if not events:
        raise click.ClickException(
            'No event is configured. Add an [[events]] table (at, label, kind = "disclosure") '
            "to monitor.toml (see the README, Configuration)."
        )
    if event_label is not None:
        try:
            events = [impact.find_event(events, event_label)]
        except LookupError as problem:
            raise click.BadParameter(str(problem), param_hint="--event") from None
    options = impact.StudyOptions(
        baseline_days=baseline_days,
        after_days=after_days or impact.AFTER_DAYS,
        sources=sources,
        n_resamples=resamples,
    )
    store = obj.store()
    result = impact.report_dict(impact.run_event_study(store, e, options) for e in events)
    click.echo(json.dumps(result, indent=2) if as_json else impact.format_report(result).rstrip())


if __name__ == "__main__":
    main()


@main.command()
@click.option(
    "--mentions",
    type=click.IntRange(min=1000),
    default=100_000,
    show_default=True,
    help="How many synthetic mentions to store (the targets are set at 1,000,000).",
)
@click.option(
    "--database",
    "bench_database",
    default=None,
    help="An EMPTY database to run in (e.g. postgresql://user@host/bench); its tables are "
    "dropped and recreated. Default: a temporary SQLite file.",
)
@click.option(
    "--feeds",
    type=click.IntRange(min=1),
    default=50,
    show_default=True,
    help="How many delayed feeds the collection measurement serves.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object of figures.")
def bench(mentions: int, bench_database: str | None, feeds: int, as_json: bool) -> None:
    """Measure ingest, the dashboard, alerts and collection (see docs/performance.md)."""
    from monitor.bench import run as bench_run

    try:
        figures = bench_run.run(
            mentions, database_url=bench_database, feeds=feeds, progress=_stderr
        )
    except bench_run.BenchError as problem:
        raise click.ClickException(str(problem)) from None
    click.echo(bench_run.main_json(figures) if as_json else bench_run.render(figures))
