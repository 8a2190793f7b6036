"""The import of a pinned subset of SigmaHQ/sigma into ``rules/community/``.

:func:`import_sigmahq` walks a SigmaHQ/sigma checkout, keeps the rule files that load and map
fully (:mod:`rules.community` says which fields a flow carries), and copies them unmodified
(their licence and attribution intact) beside the checkout's licence and a ``SOURCE.md`` naming
the commit they came from.
"""

from __future__ import annotations

import enum
import re
import shutil
import subprocess
from collections import Counter
from dataclasses import dataclass
from datetime import date
from pathlib import Path, PurePosixPath
from typing import Any, Final

import yaml
from sigma.exceptions import SigmaError
from sigma.rule import SigmaLogSource, SigmaRule

from rules.community import follows_sigmahq, translate
from rules.errors import RulesError
from rules.loader import load_rules

LICENCE_FILE: Final = "LICENSE.Detection.Rules.md"
SOURCE_FILE: Final = "SOURCE.md"
SIGMAHQ_ROOTS: Final = ("rules/web", "rules/network")
"""The parts of a SigmaHQ checkout whose rules a network sensor may answer."""
UNUSED_STATUSES: Final = frozenset({"deprecated", "unsupported"})
SIGMAHQ_URL: Final = "https://github.com/SigmaHQ/sigma"


class CheckoutError(RulesError):
    """The directory given is not a SigmaHQ/sigma checkout the import can pin."""


class Rejection(enum.StrEnum):
    """Why a SigmaHQ rule file is not imported."""

    STATUS = "deprecated or unsupported"
    CORRELATION = "a correlation rule"
    LOGSOURCE = "a log source TrustWatch flows do not answer"
    FIELD = "a field TrustWatch flows do not carry"
    UNUSABLE = "does not load"
    DUPLICATE = "a rule id already imported"


@dataclass(frozen=True)
class Verdict:
    """One rule file of the checkout (``path`` relative to it): kept, or rejected and why."""

    path: PurePosixPath
    title: str
    rejection: Rejection | None = None
    detail: str = ""


@dataclass(frozen=True)
class Checkout:
    """A SigmaHQ/sigma checkout and the commit it is at."""

    root: Path
    commit: str
    changed: bool | None  # local changes to the rules or licence; None: git could not tell


@dataclass(frozen=True)
class ImportReport:
    """What an import found: every rule file's verdict, and where and when they came from."""

    commit: str
    changed: bool | None
    imported: date
    verdicts: tuple[Verdict, ...]

    @property
    def kept(self) -> tuple[Verdict, ...]:
        return tuple(v for v in self.verdicts if v.rejection is None)

    @property
    def rejected(self) -> tuple[Verdict, ...]:
        return tuple(v for v in self.verdicts if v.rejection is not None)

    def summary(self) -> list[str]:
        """What a person reads after an import: the counts, by reason."""
        counts = Counter(v.rejection for v in self.rejected)
        lines = [
            f"SigmaHQ/sigma {self.commit[:12]}: kept {len(self.kept)} of "
            f"{len(self.verdicts)} rule files, rejected {len(self.rejected)}"
        ]
        lines += [f"  {counts[r]:>4} {r}" for r in Rejection if counts[r]]
        return lines


def import_sigmahq(
    checkout: Path, out: Path, *, today: date, dry_run: bool = False
) -> ImportReport:
    """Import the rules of a SigmaHQ/sigma checkout that run on flows into ``out``: the rule
    files unmodified, the checkout's licence, and ``SOURCE.md``. Running it again on the same
    commit (and day) leaves ``out`` as it was; rule files an earlier import left under
    ``out/web`` or ``out/network`` that are no longer kept are removed."""
    source = open_checkout(checkout)
    report = ImportReport(source.commit, source.changed, today, assess(source.root))
    if not dry_run:
        _write(source, report, out)
    return report


def open_checkout(root: Path) -> Checkout:
    """The checkout at ``root`` and its commit; :class:`CheckoutError` if it is not one."""
    if not root.is_dir():
        raise CheckoutError(f"{root} is not a directory")
    missing = [p for p in (LICENCE_FILE, *SIGMAHQ_ROOTS) if not (root / p).exists()]
    if missing:
        raise CheckoutError(
            f"{root} is not a SigmaHQ/sigma checkout: it has no {', '.join(missing)} "
            f"(clone {SIGMAHQ_URL})"
        )
    commit, changed = _git_commit(root)
    commit = commit or _commit_from_files(root)
    if commit is None:
        raise CheckoutError(
            f"{root} is not a git checkout: the import records the commit its rules come from; "
            f"clone {SIGMAHQ_URL} with git"
        )
    return Checkout(root, commit, changed)


def assess(root: Path) -> tuple[Verdict, ...]:
    """Every rule file under the checkout's :data:`SIGMAHQ_ROOTS`, kept or rejected."""
    verdicts: list[Verdict] = []
    owners: dict[str, PurePosixPath] = {}
    for base in SIGMAHQ_ROOTS:
        for path in sorted(p for p in (root / base).rglob("*") if p.suffix in (".yml", ".yaml")):
            relative = PurePosixPath(path.relative_to(root).as_posix())
            verdict, ids = _assess_file(path, relative)
            taken = [i for i in ids if i in owners]
            if verdict.rejection is None and taken:
                verdict = Verdict(
                    relative,
                    verdict.title,
                    Rejection.DUPLICATE,
                    f"id {taken[0]} is also that of {owners[taken[0]]}",
                )
            if verdict.rejection is None:
                owners.update(dict.fromkeys(ids, relative))
            verdicts.append(verdict)
    return tuple(verdicts)


def _assess_file(path: Path, relative: PurePosixPath) -> tuple[Verdict, list[str]]:
    pack = load_rules([path])
    try:
        documents = [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        documents = []
    mappings = [d for d in documents if isinstance(d, dict)]
    title = str(mappings[0].get("title", "")) if mappings else ""
    ids = [str(d["id"]) for d in mappings if d.get("id")]
    problems = "; ".join(f"line {p.line}: {p.message}" for p in pack.problems)
    rejection, detail = _policy(mappings)
    if rejection is None and pack.problems:
        rejection = _mapping_rejection(mappings) or Rejection.UNUSABLE
        detail = problems
    if rejection is None and not pack.rules:
        rejection, detail = Rejection.UNUSABLE, "no rule in the file"
    return Verdict(relative, title, rejection, detail), ids


def _policy(documents: list[dict[str, Any]]) -> tuple[Rejection | None, str]:
    """What the import refuses whatever the rule says: a status SigmaHQ retired, a
    correlation (its group-by names SigmaHQ's fields), a log source outside the table."""
    for document in documents:
        status = str(document.get("status", "")).lower()
        if status in UNUSED_STATUSES:
            return Rejection.STATUS, f"status {status}"
        if "correlation" in document:
            return Rejection.CORRELATION, "correlation rules are not imported"
        raw = document.get("logsource")
        source = raw if isinstance(raw, dict) else {}
        logsource = SigmaLogSource(
            source.get("category"), source.get("product"), source.get("service")
        )
        if not follows_sigmahq(logsource):
            shown = ", ".join(f"{k}: {v}" for k, v in source.items()) or "none"
            return Rejection.LOGSOURCE, f"logsource {{{shown}}}"
    return None, ""


def _mapping_rejection(documents: list[dict[str, Any]]) -> Rejection | None:
    """Whether the loader's problems are the mapping's (a field, a log source) or not."""
    for document in documents:
        try:
            rule = SigmaRule.from_dict(document)
        except (SigmaError, ValueError, TypeError, KeyError, AttributeError):
            return None
        misses = translate(rule)
        if misses:
            return Rejection.LOGSOURCE if misses[0].field is None else Rejection.FIELD
    return None


def source_markdown(report: ImportReport) -> str:
    """``SOURCE.md``: where the rules came from, when, and what was left out and why."""
    changed = {None: "unknown (no git)", False: "none", True: "yes: files differ from the commit"}
    lines = [
        "# Community rules: source",
        "",
        "Imported by `trustwatch rules import-sigmahq` from SigmaHQ/sigma; the rule files are",
        f"copied unmodified and licensed under the Detection Rule License ({LICENCE_FILE}).",
        "",
        f"- repository: {SIGMAHQ_URL}",
        f"- commit: {report.commit}",
        f"- local changes in the checkout: {changed[report.changed]}",
        f"- imported: {report.imported.isoformat()}",
        f"- rule files kept: {len(report.kept)} of {len(report.verdicts)} under "
        + ", ".join(SIGMAHQ_ROOTS),
        "",
        f"## Kept ({len(report.kept)})",
        "",
        *(f"- `{v.path}`: {v.title}" for v in report.kept),
        "",
        f"## Rejected ({len(report.rejected)})",
        "",
        *(f"- `{v.path}`: {v.rejection}: {v.detail}" for v in report.rejected),
    ]
    return "\n".join(lines) + "\n"


def _write(source: Checkout, report: ImportReport, out: Path) -> None:
    kept = {out / v.path.relative_to("rules") for v in report.kept}
    for base in SIGMAHQ_ROOTS:  # an earlier import's files that are no longer kept
        managed = out / PurePosixPath(base).relative_to("rules")
        stale = (
            [p for p in managed.rglob("*") if p.suffix in (".yml", ".yaml")]
            if managed.is_dir()
            else []
        )
        for path in stale:
            if path not in kept:
                path.unlink()
        for directory in sorted((d for d in managed.rglob("*") if d.is_dir()), reverse=True):
            if not any(directory.iterdir()):
                directory.rmdir()
    for verdict in report.kept:
        _copy(source.root / verdict.path, out / verdict.path.relative_to("rules"))
    _copy(source.root / LICENCE_FILE, out / LICENCE_FILE)
    (out / SOURCE_FILE).write_text(source_markdown(report), encoding="utf-8")


def _copy(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.is_file() or target.read_bytes() != source.read_bytes():
        shutil.copyfile(source, target)


_SHA: Final = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")


def _git_commit(root: Path) -> tuple[str | None, bool | None]:
    """HEAD and whether the rules or licence have local changes, by git; (None, None) if git
    is absent, refuses, or ``root`` is only inside some other repository."""
    git = shutil.which("git")
    if git is None:
        return None, None
    try:
        head = subprocess.run(  # noqa: S603 - git from PATH, our own fixed arguments
            [git, "-C", str(root), "rev-parse", "--show-toplevel", "--verify", "HEAD"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        lines = head.stdout.splitlines()
        if head.returncode != 0 or len(lines) != 2 or Path(lines[0]).resolve() != root.resolve():
            return None, None
        status = subprocess.run(  # noqa: S603 - as above
            [
                git,
                "-C",
                str(root),
                "status",
                "--porcelain",
                "--untracked-files=no",
                "--",
                *SIGMAHQ_ROOTS,
                LICENCE_FILE,
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None, None
    if not _SHA.fullmatch(lines[1]):
        return None, None
    return lines[1], (bool(status.stdout.strip()) if status.returncode == 0 else None)


def _commit_from_files(root: Path) -> str | None:
    """HEAD read from ``.git`` as git lays it out: a detached id, or a ref in its own file or
    in ``packed-refs`` (a worktree's refs live in its common directory)."""
    try:
        dot_git = root / ".git"
        if dot_git.is_file():  # a worktree or submodule: "gitdir: <path>"
            dot_git = (root / dot_git.read_text().removeprefix("gitdir:").strip()).resolve()
        head = (dot_git / "HEAD").read_text().strip()
        if _SHA.fullmatch(head):
            return head
        ref = head.removeprefix("ref:").strip()
        common = dot_git / "commondir"
        places = [dot_git] + (
            [(dot_git / common.read_text().strip()).resolve()] if common.is_file() else []
        )
        for place in places:
            loose = place / ref
            if loose.is_file() and _SHA.fullmatch(found := loose.read_text().strip()):
                return found
            packed = place / "packed-refs"
            if packed.is_file():
                for line in packed.read_text().splitlines():
                    sha, _, name = line.partition(" ")
                    if name == ref and _SHA.fullmatch(sha):
                        return sha
    except (OSError, UnicodeDecodeError):
        return None
    return None
