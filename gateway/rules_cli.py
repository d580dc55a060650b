"""``afgw rules``: check, test, explain and scan with the fraud rules.

- ``afgw rules check PATH...``: load and compile; every problem as ``file:line:col: message (hint: ...)``;
  exit 1 on any.
- ``afgw rules test PATH...``: run every rule's inline tests; each failure names the rule, the test case's
  ``file:line:col`` and why; the last line is ``N passed, M failed``; exit 1 on a failure.
- ``afgw rules explain --channel sms --from X --to Y --text "..."``: the verdict, and for each rule that
  matched, which selection held on which view (raw / normalised / squeezed / homophone / domains / fields)
  and on which substring; then the views themselves, the homophone view also spelt out as its syllables.
- ``afgw rules scan``: JSON Lines in on stdin, one JSON line out per input line, in order:
  ``{"action": ..., "risk": ..., "rules": [...], "category": ...}``. Blank lines are skipped. A line that
  is not a JSON object of the documented shape stops the scan (a misspelt key such as ``chanel`` too;
  keys that resemble none of the message's are ignored): the lines before it have been answered,
  ``stdin:N: problem`` goes to stderr, and the exit status is 2.

- ``afgw rules tune CORPUS.jsonl [--rules PATH...] [--all-rules] [--diff OUT]``: fit suggested scores for
  the rules that carry one (with ``--all-rules``, for every rule but allow rules) on a labelled corpus,
  meant to be the dev split (see :mod:`rules.tuning`); prints a table of each rule's current and suggested
  score with its fraud and ham hits, then a unified diff of the rule files for the author to review and
  apply with ``patch -p0``. Exit 2 for a bad corpus line, 1 when the rules have errors.
- ``afgw rules eval CORPUS.jsonl [--json OUT] [--min-catch R] [--max-ham-blocked R] ...``: evaluate a
  labelled corpus (see :mod:`rules.evaluation`); prints the overall figures, a table per category, the
  confusion table, the figures per tag, then the misses and the false positives with the rules that
  contributed. Progress goes to stderr every 1,000 messages. Exit 3 when a figure is outside a threshold
  given on the command line, 2 for a bad corpus line (``FILE:LINE: problem`` on stderr).

explain, scan, eval and tune use the shipped packs (``rules/packs``) unless ``--rules PATH...`` is given.
"""

from __future__ import annotations

import argparse
import difflib
import json
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from rules import RuleSet

EXIT_RULES = 1  # the rules have errors, or a test failed
EXIT_INPUT = 2  # scan: a bad input line; eval: a bad corpus line
EXIT_THRESHOLD = 3  # eval: a figure is outside a threshold
PROGRESS_EVERY = 1000
# How alike a key must be to a known one to count as its misspelling: 'chanel', 'form', 'Text' are;
# 'row' (0.67 against 'now') and 'expect' (0.6 against 'text') are someone's own keys.
_NEAR_MISS = 0.75


def add_parser(sub: Any, parents: Sequence[argparse.ArgumentParser] = ()) -> None:
    """Register ``afgw rules ...`` on the ``afgw`` subcommand parsers."""
    rules = sub.add_parser("rules", help="check, test, explain and scan with the fraud rules", parents=list(parents))
    commands = rules.add_subparsers(dest="rules_command", required=True)

    check = commands.add_parser("check", help="load and compile rule files; print every error")
    check.add_argument("paths", nargs="+", metavar="PATH", help="rule files or directories")
    check.set_defaults(func=cmd_check)

    test = commands.add_parser("test", help="run every rule's inline tests")
    test.add_argument("paths", nargs="+", metavar="PATH", help="rule files or directories")
    test.add_argument("-v", "--verbose", action="store_true", help="also list the cases that pass")
    test.set_defaults(func=cmd_test)

    explain = commands.add_parser("explain", help="show which rules match a message, where and why")
    explain.add_argument("--channel", choices=("sms", "call"), default="sms")
    explain.add_argument("--from", dest="src", default="", metavar="NUMBER")
    explain.add_argument("--to", dest="dst", default="", metavar="NUMBER")
    explain.add_argument("--text", default="")
    explain.add_argument("--origin", choices=("domestic", "international"), default="domestic")
    explain.add_argument("--sender-id", default=None)
    explain.add_argument(
        "--attestation",
        choices=("A", "B", "C"),
        default="",
        help="a call's verified STIR attestation (none: unverified)",
    )
    explain.add_argument("--now", default=None, help="epoch seconds or ISO 8601 (Beijing time without offset)")
    explain.add_argument("--json", action="store_true", help="print the verdict and matches as JSON")
    _rules_option(explain)
    explain.set_defaults(func=cmd_explain)

    scan = commands.add_parser("scan", help="JSON Lines in, one verdict line out per message")
    _rules_option(scan)
    scan.set_defaults(func=cmd_scan)

    ev = commands.add_parser("eval", help="measure the rules on a labelled corpus (JSON Lines)")
    ev.add_argument("corpus", nargs="+", metavar="CORPUS.jsonl", help="labelled messages, one JSON object a line")
    _rules_option(ev)
    ev.add_argument("--json", dest="json_out", metavar="OUT", default=None, help="also write the report as JSON")
    ev.add_argument(
        "--limit", type=int, default=50, metavar="N", help="list at most N misses and N false positives (0: all)"
    )
    for name, help_text in (
        ("--min-catch", "fail when less than this share of fraud is blocked or warned (e.g. 0.97)"),
        ("--max-ham-blocked", "fail when more than this share of ham is blocked (e.g. 0.005)"),
        ("--max-ham-touched", "fail when more than this share of ham gets any action but pass (e.g. 0.02)"),
        ("--min-precision", "fail when the share of fraud among caught messages is below this"),
        ("--min-f1", "fail when F1 is below this"),
        ("--min-category-catch", "fail when any fraud category's catch rate is below this"),
    ):
        ev.add_argument(name, type=_share, default=None, metavar="R", help=help_text)
    ev.set_defaults(func=cmd_eval)

    tune = commands.add_parser("tune", help="suggest rule scores from a labelled corpus (its dev split)")
    tune.add_argument("corpus", nargs="+", metavar="CORPUS.jsonl", help="labelled messages, one JSON object a line")
    _rules_option(tune)
    tune.add_argument(
        "--all-rules",
        action="store_true",
        help="also suggest scores for rules without one (all but allow rules, in categories with thresholds)",
    )
    tune.add_argument("--diff", metavar="OUT", default=None, help="write the patch here instead of to stdout")
    tune.set_defaults(func=cmd_tune)


def _share(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number") from None
    if not 0 <= number <= 1:
        raise argparse.ArgumentTypeError(f"{value} is not a share between 0 and 1")
    return number


def _rules_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--rules", nargs="+", metavar="PATH", default=None, help="rule files or directories (default: rules/packs)"
    )


def _build(paths: Sequence[str] | None, err: TextIO) -> RuleSet | None:
    import rules

    try:
        return rules.build(paths or [rules.DEFAULT_PACKS])
    except rules.SourceErrors as exc:
        for error in exc.errors:
            print(error, file=err)
        return None


# --- check --------------------------------------------------------------------------------------------


def cmd_check(args: argparse.Namespace, out: TextIO | None = None) -> int:
    import rules

    out = out or sys.stdout
    files = rules.rule_files(args.paths)
    errors = rules.check(args.paths)
    for error in errors:
        print(error, file=out)
    if errors:
        print(f"{len(errors)} error{'s' if len(errors) != 1 else ''} in {len(files)} file(s)", file=out)
        return EXIT_RULES
    print(f"ok: {len(files)} file(s)", file=out)
    return 0


# --- test ---------------------------------------------------------------------------------------------


def cmd_test(args: argparse.Namespace, out: TextIO | None = None) -> int:
    from rules.testing import run_tests

    out = out or sys.stdout
    ruleset = _build(args.paths, out)
    if ruleset is None:
        print("the rules did not load; no test ran", file=out)
        return EXIT_RULES
    results = run_tests(ruleset)
    failed = [r for r in results if not r.passed]
    for r in results:
        if not r.passed:
            print(f"FAILED {r.describe()}", file=out)
        elif args.verbose:
            print(f"passed {r.rule} {r.case.location} {r.case.label}", file=out)
    untested = [r.rule.id for r in ruleset.rules if not r.rule.tests]
    if untested:
        print(f"rules without tests: {', '.join(untested)}", file=out)
    print(f"{len(results) - len(failed)} passed, {len(failed)} failed", file=out)
    return EXIT_RULES if failed else 0


# --- explain ------------------------------------------------------------------------------------------


def cmd_explain(args: argparse.Namespace, out: TextIO | None = None) -> int:
    import rules
    from rules.homophones import fold_squeezed, spell
    from rules.message import parse_time
    from rules.normalise import views

    out = out or sys.stdout
    ruleset = _build(args.rules, sys.stderr)
    if ruleset is None:
        return EXIT_RULES
    try:
        now = parse_time(args.now) if args.now is not None else None
    except ValueError as exc:
        print(f"--now: {exc}", file=sys.stderr)
        return EXIT_INPUT
    message = rules.Message(
        channel=args.channel,
        src=args.src,
        dst=args.dst,
        text=args.text,
        origin=args.origin,
        sender_id=args.sender_id,
        now=now,
        attestation=args.attestation,
    )
    verdict = rules.Engine(ruleset).evaluate(message, explain=True)
    v = views(args.text)
    homophone = fold_squeezed(v.squeezed)
    if args.json:
        record: dict[str, Any] = verdict.scan_record()
        record.update(template=verdict.template, dissuade=verdict.dissuade, label=verdict.label)
        record["overridden"] = list(verdict.overridden)
        record["scores"] = _scores_json(verdict)
        record["matches"] = [
            {
                "rule": m.rule,
                "selection": m.selection,
                "key": m.key,
                "view": m.view,
                "pattern": m.pattern,
                "text": m.text,
                "start": m.start,
                "end": m.end,
                "location": str(m.location) if m.location else None,
            }
            for m in verdict.matches
        ]
        record["views"] = {
            "normalised": v.normalised,
            "squeezed": v.squeezed,
            "homophone": homophone,
            "domains": list(v.domains),
        }
        print(json.dumps(record, ensure_ascii=False, indent=2), file=out)
        return 0
    print(
        f"verdict: {verdict.action.value}  risk: {verdict.risk.value}  category: {verdict.category or '-'}"
        f"  template: {verdict.template or '-'}  dissuade: {'yes' if verdict.dissuade else 'no'}"
        f"  label: {verdict.label or '-'}",
        file=out,
    )
    shown = list(verdict.rules) + list(verdict.overridden)
    if not shown:
        print("no rule matched", file=out)
    _print_scores(verdict, ruleset, out, "")
    for rule_id in shown:
        rule = ruleset.by_id[rule_id].rule
        note = "  (overridden by an allow rule)" if rule_id in verdict.overridden else ""
        acts = "" if rule.action == "score" else f"{rule.action} {rule.risk or '-'}"
        points = f"score {rule.score:+g}" if rule.score is not None else ""
        what = " ".join(x for x in (acts, points) if x)
        print(f"{rule.id}  {what}  {rule.title}  [{rule.location}]{note}", file=out)
        for m in verdict.matches:
            if m.rule != rule_id:
                continue
            span = (
                f"[{m.start}:{m.end}]"
                if m.start is not None
                else f"[..{m.end}]"
                if m.view not in ("fields", "signals")
                else ""
            )
            print(f"    {m.selection}: {m.key} {m.pattern!r} on {m.view}{span} {m.text!r}  ({m.location})", file=out)
    print("views:", file=out)
    print(f"    raw:        {args.text!r}", file=out)
    print(f"    normalised: {v.normalised!r}", file=out)
    print(f"    squeezed:   {v.squeezed!r}", file=out)
    print(f"    homophone:  {homophone!r} ({spell(homophone) or '-'})", file=out)
    print(f"    domains:    {', '.join(v.domains) or '-'}", file=out)
    return 0


def _scores_json(verdict: Any) -> dict[str, Any]:
    return {
        "contributions": [{"rule": r, "category": c, "score": p} for r, c, p in verdict.contributions],
        "totals": dict(verdict.totals),
    }


def _print_scores(verdict: Any, ruleset: Any, out: TextIO, indent: str) -> None:
    """Each category's total against its thresholds, then every contribution to it."""
    for category, total in verdict.totals:
        limits = ruleset.collection.thresholds(category)
        held = (
            ", ".join(f"{name} {getattr(limits, name):g}" for name in ("tag", "warn", "block") if getattr(limits, name))
            if limits is not None
            else "no thresholds"
        )
        reached = (limits.action(total) if limits is not None else None) or "nothing"
        print(f"{indent}score {category}: {total:g} ({held}) -> {reached}", file=out)
        for rule_id, cat, points in verdict.contributions:
            if cat == category:
                print(f"{indent}    {points:+g}  {rule_id}", file=out)


# --- scan ---------------------------------------------------------------------------------------------


def cmd_scan(args: argparse.Namespace, stdin: TextIO | None = None, out: TextIO | None = None) -> int:
    import rules

    stdin = stdin or sys.stdin
    out = out or sys.stdout
    ruleset = _build(args.rules, sys.stderr)
    if ruleset is None:
        return EXIT_RULES
    engine = rules.Engine(ruleset)
    for number, line in enumerate(stdin, 1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            return _bad_line(out, number, f"not JSON: {_json_problem(exc, line)}")
        if not isinstance(data, dict):
            return _bad_line(out, number, f"expected a JSON object, got {type(data).__name__}")
        problems = _unknown_keys(data)
        try:
            message = rules.message_from_mapping(data)
        except rules.MessageError as exc:
            problems += exc.problems
        if problems:
            return _bad_line(out, number, "; ".join(problems))
        verdict = engine.evaluate(message)
        out.write(json.dumps(verdict.scan_record(), ensure_ascii=False) + "\n")
        out.flush()  # a co-process writes one line and waits for its answer
    return 0


def _json_problem(exc: json.JSONDecodeError, line: str) -> str:
    """The decoder's complaint without its own "line 1 column 5 (char 4)": the line is named once, by
    the caller, and a column in a one-line document is all that is left to say."""
    if exc.pos >= len(line.rstrip("\r\n")):
        return f"{exc.msg} at the end of the line"
    return f"{exc.msg} at column {exc.pos + 1}"


def _unknown_keys(data: dict[str, Any]) -> list[str]:
    """A key that is nearly one of the message's is a misspelling, and the line is refused: read as
    given, ``{"chanel": "call"}`` would be scanned as the default, an SMS. Keys that resemble none stay
    ignored, as the scan contract promises (callers pass ids and labels through)."""
    from rules import spec

    known = [f.name for f in spec.MESSAGE.fields]
    problems = []
    for key in data:
        if key in known:
            continue
        close = difflib.get_close_matches(key.lower(), known, n=1, cutoff=_NEAR_MISS)
        if close:
            problems.append(f"unknown key {key!r} (did you mean {close[0]!r}?)")
    return problems


def _bad_line(out: TextIO, number: int, problem: str) -> int:
    out.flush()
    print(f"stdin:{number}: {problem}", file=sys.stderr)
    return EXIT_INPUT


# --- eval ---------------------------------------------------------------------------------------------


def cmd_eval(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    import rules
    from rules import evaluation as ev

    out = out or sys.stdout
    err = err or sys.stderr
    samples = _read_samples(args.corpus, err)
    if samples is None:
        return EXIT_INPUT
    ruleset = _build(args.rules, err)
    if ruleset is None:
        return EXIT_RULES
    engine = rules.Engine(ruleset)
    total = len(samples)

    def progress(n: int) -> None:
        if n % PROGRESS_EVERY == 0 or (n == total and total >= PROGRESS_EVERY):
            print(f"eval: {n}/{total} messages", file=err, flush=True)

    report = ev.evaluate(engine, samples, progress)
    limits = ev.Thresholds(
        min_catch=args.min_catch,
        max_ham_blocked=args.max_ham_blocked,
        max_ham_touched=args.max_ham_touched,
        min_precision=args.min_precision,
        min_f1=args.min_f1,
        min_category_catch=args.min_category_catch,
    )
    failed = ev.failures(report, limits)
    _print_report(report, engine, args.limit, out)
    if args.json_out:
        with open(args.json_out, "w", encoding="utf-8") as f:
            json.dump(_report_json(report, engine, failed), f, ensure_ascii=False, indent=1)
            f.write("\n")
    for problem in failed:
        print(f"FAILED: {problem}", file=out)
    return EXIT_THRESHOLD if failed else 0


def _read_samples(paths: Sequence[str], err: TextIO) -> list[Any] | None:
    from rules import evaluation as ev

    samples: list[ev.Sample] = []
    for path in paths:
        try:
            with open(path, encoding="utf-8") as f:
                samples += ev.read_corpus(f, path)
        except ev.CorpusError as exc:
            print(exc, file=err)
            return None
        except (OSError, UnicodeDecodeError) as exc:
            print(f"{path}: {exc}", file=err)
            return None
    return samples


def cmd_tune(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    import rules
    from rules import tuning

    out = out or sys.stdout
    err = err or sys.stderr
    samples = _read_samples(args.corpus, err)
    if samples is None:
        return EXIT_INPUT
    ruleset = _build(args.rules, err)
    if ruleset is None:
        return EXIT_RULES
    suggestions = tuning.suggest(rules.Engine(ruleset), samples, all_rules=args.all_rules)
    if not suggestions:
        print(
            "no rule to tune: give rules a score (or use --all-rules) in categories that have scoring thresholds",
            file=err,
        )
        return 0
    print(f"{'rule':<32} {'now':>6} {'suggested':>9} {'fraud':>6} {'ham':>6}", file=out)
    for s in suggestions:
        now = "-" if s.current is None else f"{s.current:g}"
        print(f"{s.rule.id:<32} {now:>6} {s.suggested:>9g} {s.fraud_hits:>6} {s.ham_hits:>6}", file=out)
    diff = tuning.patch(suggestions)
    if args.diff:
        with open(args.diff, "w", encoding="utf-8") as f:
            f.write(diff)
        print(f"patch written to {args.diff} (apply with: patch -p0 < {args.diff})", file=out)
    else:
        print(diff or "(no score changes)", file=out, end="" if diff else "\n")
    return 0


def _print_report(report: Any, engine: Any, limit: int, out: TextIO) -> None:
    from rules import evaluation as ev

    pct = ev.percent
    s = report.summary()
    print(
        f"{s['messages']} messages: {s['fraud']} fraud, {s['ham']} ham\n"
        f"catch rate {pct(report.catch_rate)}  ham blocked {pct(report.ham_blocked)}"
        f"  ham touched {pct(report.ham_touched)}\n"
        f"precision {pct(report.precision)}  recall {pct(report.recall)}  F1 {pct(report.f1)}",
        file=out,
    )
    fraud = [c for c in report.categories if c.label == "fraud"]
    ham = [c for c in report.categories if c.label == "ham"]
    if fraud:
        print("\nfraud by category:", file=out)
        print(f"  {'category':<28}{'n':>6}{'caught':>9}{'blocked':>9}{'prec':>9}{'recall':>9}{'F1':>9}", file=out)
        for c in fraud:
            print(
                f"  {c.category:<28}{c.total:>6}{pct(c.catch_rate):>9}{pct(c.blocked_rate):>9}"
                f"{pct(c.precision):>9}{pct(c.recall):>9}{pct(c.f1):>9}",
                file=out,
            )
    if ham:
        print("\nham by category:", file=out)
        print(f"  {'category':<28}{'n':>6}{'blocked':>9}{'touched':>9}", file=out)
        for c in ham:
            print(f"  {c.category:<28}{c.total:>6}{pct(c.blocked_rate):>9}{pct(c.touched_rate):>9}", file=out)
    rows, columns, counts = ev.confusion_rows(report)
    print("\nconfusion (rows: corpus category; columns: category of the deciding rule):", file=out)
    print(f"  {'':<28}" + "".join(f"{col[:15]:>16}" for col in columns), file=out)
    for row in rows:
        print(f"  {row:<28}" + "".join(f"{counts.get((row, col), 0):>16}" for col in columns), file=out)
    if report.tags:
        print("\nby tag (fraud: caught; ham: touched):", file=out)
        for (tag, label), (n, hit) in report.tags.items():
            print(f"  {tag:<28}{label:<6}{n:>6}{pct(hit / n):>9}", file=out)
    for title, outcomes in (("misses", report.misses), ("false positives", report.false_positives)):
        print(f"\n{title}: {len(outcomes)}", file=out)
        shown = outcomes if limit <= 0 else outcomes[:limit]
        for o in shown:
            _print_outcome(o, engine, out)
        if len(shown) < len(outcomes):
            print(f"  ... and {len(outcomes) - len(shown)} more (all of them are in --json)", file=out)


def _print_outcome(o: Any, engine: Any, out: TextIO) -> None:
    from rules import evaluation as ev

    verdict = ev.contributions(engine, o.sample)
    print(
        f"  {o.sample.where} {o.sample.label}/{o.sample.category}: {verdict.action.value}"
        f" {verdict.category or '-'}  {o.sample.message.text!r}",
        file=out,
    )
    _print_scores(verdict, engine.ruleset, out, "      ")
    for m in verdict.matches:
        print(f"      {m.rule} {m.selection}: {m.key} {m.pattern!r} on {m.view} {m.text!r}", file=out)
    if verdict.overridden:
        print(f"      overridden: {', '.join(verdict.overridden)}", file=out)


def _report_json(report: Any, engine: Any, failed: list[str]) -> dict[str, Any]:
    from rules import evaluation as ev

    def number(value: float) -> float | None:
        return None if value != value else round(value, 6)  # NaN: not computable

    def outcome(o: Any) -> dict[str, Any]:
        verdict = ev.contributions(engine, o.sample)
        return {
            "where": o.sample.where,
            "category": o.sample.category,
            "tags": list(o.sample.tags),
            "text": o.sample.message.text,
            "action": verdict.action.value,
            "verdict_category": verdict.category,
            "rules": list(verdict.rules),
            "overridden": list(verdict.overridden),
            "scores": _scores_json(verdict),
            "matches": [
                {"rule": m.rule, "selection": m.selection, "key": m.key, "view": m.view, "text": m.text}
                for m in verdict.matches
            ],
        }

    rows, columns, counts = ev.confusion_rows(report)
    return {
        "summary": report.summary(),
        "categories": [
            {
                "category": c.category,
                "label": c.label,
                "messages": c.total,
                "caught": number(c.catch_rate) if c.label == "fraud" else None,
                "blocked": number(c.blocked_rate),
                "touched": number(c.touched_rate),
                "precision": number(c.precision) if c.label == "fraud" else None,
                "recall": number(c.recall) if c.label == "fraud" else None,
                "f1": number(c.f1) if c.label == "fraud" else None,
            }
            for c in report.categories
        ],
        "confusion": {row: {col: counts.get((row, col), 0) for col in columns} for row in rows},
        "tags": [
            {"tag": tag, "label": label, "messages": n, "rate": number(hit / n)}
            for (tag, label), (n, hit) in report.tags.items()
        ],
        "misses": [outcome(o) for o in report.misses],
        "false_positives": [outcome(o) for o in report.false_positives],
        "failed": failed,
    }
