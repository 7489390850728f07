"""The ``aiotune`` command (also ``python -m aiotune``): look at studies from their journals.

::

    aiotune show trials.jsonl                 status counts, the best trial, top 10, durations
    aiotune best trials.jsonl [--json]        the best trial (the Pareto front: several objectives)
    aiotune trials trials.jsonl [--status S] [--sort score|number|duration] [--limit N]
                                [--format table|csv|json]
    aiotune report trials.jsonl [-o report.html]
    aiotune serve trials.jsonl [--host 127.0.0.1] [--port 8080]

Several journals of one study may be given; their trials are merged. Exit
status: 0 ok, 2 a usage error, 1 bad input (a missing or corrupt journal,
printed with its line number; a study with no feasible complete trial for
``best``; a missing extra).

A study with several objectives has no single best: ``show`` and ``best``
print its Pareto front (the feasible complete trials no other one
dominates), and ``best --json`` prints ``{"directions": [...],
"pareto_front": [{"number", "params", "scores", "status"}, ...]}`` (in trial
number order). A constrained study's best and top trials are feasible ones;
``show`` counts the complete trials that break a constraint.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any, TextIO

from aiotune.errors import JournalError, NoCompleteTrialError, TuningError
from aiotune.trial import Trial, TrialStatus
from aiotune.views import summary
from aiotune.views.figures import text
from aiotune.views.source import Snapshot, read_snapshot

PROG = "aiotune"


def _table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Rows as aligned columns, a header line first."""
    widths = [len(h) for h in head]
    for row in rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
             for r in (head, *rows)]  # fmt: skip
    return "\n".join(lines)


def _one_line(value: str, width: int = 80) -> str:
    flat = " ".join(value.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def _read(paths: list[str]) -> Snapshot:
    return read_snapshot(paths)


def _counts_line(snap: Snapshot) -> str:
    counts = summary.status_counts(snap.trials)
    parts = [f"{n} {status}" for status, n in counts.items() if n]
    return f"{len(snap.trials)} trials" + (f": {', '.join(parts)}" if parts else "")


def _param_rows(trial: Trial, names: list[str]) -> list[str]:
    return [f"  {name} = {text(trial.params[name])}" for name in names if name in trial.params]


def _directions(snap: Snapshot) -> str:
    return snap.direction if isinstance(snap.direction, str) else ", ".join(snap.direction)


def _scores(trial: Trial) -> str:
    return ", ".join(text(v) for v in trial.scores)


def _front_lines(snap: Snapshot, front: list[Trial]) -> list[str]:
    names = snap.param_names
    heads = [f"score{i + 1}" for i in range(len(_objectives(snap)))]
    rows = [
        [str(t.number), *(text(v) for v in t.scores), _duration(t), *(_param(t, n) for n in names)]
        for t in front
    ]
    return [_table(["#", *heads, "duration", *names], rows)]


def _objectives(snap: Snapshot) -> list[str]:
    return summary.objective_names(snap.direction)


def cmd_show(args: argparse.Namespace, out: TextIO) -> int:
    """Status counts, the best trial with its params, the top 10, duration statistics."""
    snap = _read(args.journals)
    names = snap.param_names
    lines = [f"study: {snap.label} ({_directions(snap)})", _counts_line(snap)]
    broken = summary.infeasible(snap.trials)
    if broken:
        lines.append(f"infeasible: {len(broken)} complete trial(s) break a constraint")
    if summary.is_multi(snap.direction):
        front = summary.front(snap.trials, snap.direction)
        lines.append(f"multi-objective: {', '.join(_objectives(snap))}; no single best")
        if not front:
            lines.append("Pareto front: empty (no feasible complete trial)")
        else:
            lines += ["", f"Pareto front: {len(front)} trial(s), none beaten by another:"]
            lines += _front_lines(snap, front)
    else:
        best = summary.best(snap.trials, snap.direction)
        if best is None:
            why = "no complete trial is feasible" if broken else "no trial completed"
            lines.append(f"best: none ({why})")
        else:
            lines.append(f"best: trial {best.number}, score {text(best.score)}")
            lines.extend(_param_rows(best, names))
        top = summary.top(snap.trials, snap.direction, 10)
        if top:
            lines += ["", f"top {len(top)} by score{' (feasible)' if broken else ''}:"]
            head = ["#", "score", "duration", *names]
            rows = [
                [str(t.number), text(t.score), _duration(t), *(_param(t, n) for n in names)]
                for t in top
            ]
            lines.append(_table(head, rows))
    stats = summary.duration_stats(snap.trials)
    if stats is not None:
        lines += [
            "",
            f"durations (s): mean {stats.mean:.3g}, median {stats.median:.3g}, "
            f"p90 {stats.p90:.3g}, min {stats.min:.3g}, max {stats.max:.3g}, "
            f"total {stats.total:.4g} over {stats.count} trials",
        ]
    failed = [t for t in snap.trials if t.error is not None]
    if failed:
        kinds: dict[str, int] = {}
        for t in failed:
            kinds[t.error.type if t.error else "?"] = (
                kinds.get(t.error.type if t.error else "?", 0) + 1
            )
        lines += ["", "errors: " + ", ".join(f"{n} {kind}" for kind, n in kinds.items())]
    lines += [f"note: {note}" for note in snap.notes]
    out.write("\n".join(lines) + "\n")
    return 0


def _duration(trial: Trial) -> str:
    return "" if trial.duration is None else f"{trial.duration:.3g}"


def _param(trial: Trial, name: str) -> str:
    return text(trial.params[name]) if name in trial.params else ""


def _record(trial: Trial) -> dict[str, Any]:
    return {
        "number": trial.number,
        "params": trial.params,
        "score": trial.score,
        "status": trial.status.value,
    }


def cmd_best(args: argparse.Namespace, out: TextIO) -> int:
    """The best trial: its number, score and params (``--json``: one JSON object).

    Several objectives: the Pareto front, one trial per line with its scores
    and params (``--json``: ``{"directions", "pareto_front"}``).
    """
    snap = _read(args.journals)
    if summary.is_multi(snap.direction):
        return _best_front(snap, args.json, out)
    best = summary.best(snap.trials, snap.direction)
    if best is None:
        if summary.infeasible(snap.trials):
            raise NoCompleteTrialError(
                f"no complete trial is feasible ({_counts_line(snap)}; every one breaks a "
                "constraint); no best"
            )
        raise NoCompleteTrialError(f"no trial completed ({_counts_line(snap)}); no best")
    if args.json:
        out.write(json.dumps(_record(best), default=str) + "\n")
    else:
        lines = [f"trial {best.number}: score {text(best.score)}"]
        lines += _param_rows(best, snap.param_names)
        out.write("\n".join(lines) + "\n")
    return 0


def _best_front(snap: Snapshot, as_json: bool, out: TextIO) -> int:
    front = summary.front(snap.trials, snap.direction)
    if not front:
        raise NoCompleteTrialError(
            f"no feasible complete trial ({_counts_line(snap)}); the Pareto front is empty"
        )
    if as_json:
        record = {
            "directions": list(snap.direction),
            "pareto_front": [
                {
                    "number": t.number,
                    "params": t.params,
                    "scores": list(t.scores),
                    "status": t.status.value,
                }
                for t in front
            ],
        }
        out.write(json.dumps(record, default=str) + "\n")
        return 0
    lines = [
        f"multi-objective ({_directions(snap)}): no single best; "
        f"the Pareto front has {len(front)} trial(s):"
    ]
    for trial in front:
        lines.append(f"trial {trial.number}: scores {_scores(trial)}")
        lines += _param_rows(trial, snap.param_names)
    out.write("\n".join(lines) + "\n")
    return 0


def cmd_trials(args: argparse.Namespace, out: TextIO) -> int:
    """The trials, filtered, sorted and limited, as a table, CSV or JSON."""
    snap = _read(args.journals)
    names = snap.param_names
    pairs = list(zip(snap.trials, snap.origins or [None] * len(snap.trials), strict=True))
    if args.status:
        pairs = [p for p in pairs if p[0].status.value in args.status]
    multi = summary.is_multi(snap.direction)
    if args.sort == "score":  # several objectives: by the first one
        first = snap.direction if isinstance(snap.direction, str) else snap.direction[0]
        sign = -1.0 if first == "maximize" else 1.0
        pairs.sort(
            key=lambda p: (
                not p[0].scores,
                sign * (p[0].scores[0] if p[0].scores else 0.0),
                p[0].number,
            )
        )
    elif args.sort == "duration":
        pairs.sort(key=lambda p: (p[0].duration is None, -(p[0].duration or 0.0), p[0].number))
    if args.limit is not None:
        pairs = pairs[: args.limit]
    several = bool(snap.origins)
    if args.format == "json":
        records = []
        for trial, origin in pairs:
            record = {
                **_record(trial),
                "scores": list(trial.scores),
                "feasible": trial.feasible,
                "constraints": None if trial.constraints is None else list(trial.constraints),
                "duration": trial.duration,
                "worker": trial.worker,
                "error": None if trial.error is None else str(trial.error),
            }
            if several:
                record["journal"] = origin
            records.append(record)
        out.write(json.dumps(records, default=str, indent=1) + "\n")
        return 0
    count = len(_objectives(snap))
    score_heads = [f"scores.{i}" for i in range(count)] if multi else ["score"]
    constrained = any(t.constraints is not None for t, _ in pairs)
    head = ["number", "status", *score_heads, *(["feasible"] if constrained else [])]
    head += ["duration", *names, "error"]
    if several:
        head.append("journal")
    rows = []
    for trial, origin in pairs:
        row = [str(trial.number), trial.status.value]
        if multi:
            row += [text(trial.scores[i]) if i < len(trial.scores) else "" for i in range(count)]
        else:
            row.append(text(trial.score) if trial.score is not None else "")
        if constrained:
            row.append("" if not trial.scores else ("yes" if trial.feasible else "no"))
        row += [_duration(trial), *(_param(trial, n) for n in names)]
        row.append("" if trial.error is None else str(trial.error))
        if several:
            row.append(origin or "")
        rows.append(row)
    if args.format == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(head)
        writer.writerows(rows)
        out.write(buffer.getvalue())
    else:
        rows = [[_one_line(cell, 60) for cell in row] for row in rows]
        out.write(_table(head, rows) + "\n")
    return 0


def cmd_report(args: argparse.Namespace, out: TextIO) -> int:
    """Write the HTML report."""
    from aiotune.reports import report

    path = report(args.journals if len(args.journals) > 1 else args.journals[0], args.output)
    out.write(f"wrote {path}\n")
    return 0


def cmd_serve(args: argparse.Namespace, out: TextIO) -> int:
    """Serve the live dashboard with uvicorn until interrupted."""
    from aiotune.web import serve

    for path in args.journals:
        if not os.path.exists(path):
            raise JournalError(path, None, "no such file")
    serve(args.journals, host=args.host, port=args.port)
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Look at aiotune studies from their journals (JSONL files).",
        epilog="Exit status: 0 ok, 2 usage error, 1 bad input (missing or corrupt journal).",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help_: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_, description=help_)
        sub.add_argument(
            "journals", nargs="+", metavar="JOURNAL", help="journal file(s) of one study"
        )
        return sub

    command("show", "status counts, the best trial, the top 10 and duration statistics")
    best = command("best", "the best trial (several objectives: the Pareto front)")
    best.add_argument(
        "--json",
        action="store_true",
        help="one JSON object: number, params, score, status "
        "(several objectives: directions, pareto_front)",
    )
    trials = command("trials", "list the trials")
    trials.add_argument(
        "--status",
        action="append",
        choices=[s.value for s in TrialStatus],
        help="only trials with this status (repeatable)",
    )
    trials.add_argument(
        "--sort",
        choices=["number", "score", "duration"],
        default="number",
        help="number (ascending, the default), score (best first; several objectives: by the "
        "first) or duration (longest first)",
    )
    trials.add_argument("--limit", type=_positive, metavar="N", help="at most N trials")
    trials.add_argument("--format", choices=["table", "csv", "json"], default="table")
    report = command("report", "write a self-contained HTML report (opens offline)")
    report.add_argument("-o", "--output", default="report.html", help="default: report.html")
    serve = command("serve", "serve the live dashboard (needs the 'web' extra)")
    serve.add_argument("--host", default="127.0.0.1", help="default: 127.0.0.1 (this machine only)")
    serve.add_argument("--port", type=int, default=8080, help="default: 8080")
    return parser


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {number}")
    return number


_COMMANDS = {
    "show": cmd_show,
    "best": cmd_best,
    "trials": cmd_trials,
    "report": cmd_report,
    "serve": cmd_serve,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``aiotune`` command with ``argv`` (default: ``sys.argv[1:]``); the exit status."""
    args = _parser().parse_args(argv)  # exits with status 2 on a usage error
    logging.basicConfig(level=logging.WARNING, format=f"{PROG}: %(message)s")
    try:
        return _COMMANDS[args.command](args, sys.stdout)
    except (TuningError, OSError) as exc:
        sys.stderr.write(f"{PROG}: error: {exc}\n")
        return 1
    except KeyboardInterrupt:
        return 130
