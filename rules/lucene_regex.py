"""Python regular expressions (the Sigma ``re`` modifier, as the in-stream engine runs them)
rewritten in Lucene's regular-expression syntax, which both ES|QL ``RLIKE`` and Lucene query
strings use.

The two differ in more than spelling. Python *searches* (a match anywhere, ``^`` and ``$``
anchor it) where Lucene matches the *whole* value, so an unanchored pattern gets ``.*`` on each
side. Python's ``.`` stops at a line break unless the ``s`` flag is set, Lucene's does not.
Lucene has no flags: ``i`` becomes a character class per letter (``[aA]``). Lucene has no
look-around, back-references, word boundaries or inner anchors: those raise
:class:`~rules.errors.UnsupportedRuleError` rather than become a query that matches something
else. ``\\d``, ``\\w`` and ``\\s`` take their ASCII meaning (Python's also match non-ASCII
digits, letters and spaces): the translation says so in its notes.

>>> to_lucene("^admin[0-9]+\\\\.", ignore_case=True).pattern
'[aA][dD][mM][iI][nN][0-9]+\\\\..*'
>>> to_lucene("ab$").pattern
'.*ab(\\n)?'
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from rules.errors import UnsupportedRuleError

NEWLINE: Final = "\n"
_CLASSES: Final = {  # the shorthand classes, as ranges, in their ASCII meaning
    "d": ((48, 57),),
    "w": ((48, 57), (65, 90), (95, 95), (97, 122)),
    "s": ((32, 32), (9, 13)),
}
_CHAR_ESCAPES: Final = {"n": "\n", "t": "\t", "r": "\r", "f": "\f", "v": "\v", "a": "\a"}
_REPEAT: Final = re.compile(r"\{(\d*)(?:(,)(\d*))?\}")
_HEX: Final = {"x": 2, "u": 4, "U": 8}
_OCTAL: Final = re.compile(r"0[0-7]{0,2}|[1-3][0-7]{2}")  # what Python reads as octal
ASCII_NOTE: Final = "regular expression: \\d, \\w and \\s match ASCII characters only"


@dataclass(frozen=True)
class LuceneRegex:
    pattern: str
    notes: tuple[str, ...] = ()


def to_lucene(
    pattern: str, *, ignore_case: bool = False, multiline: bool = False, dotall: bool = False
) -> LuceneRegex:
    """The Lucene pattern that matches a whole value exactly when ``re.search`` with these
    flags finds ``pattern`` in it."""
    parser = _Parser(pattern, ignore_case=ignore_case, dotall=dotall)
    branches = parser.top_level()
    rendered = []
    for body, starts, ends in branches:
        head = ("(.*\n)?" if multiline else "") if starts else ".*"
        tail = ("(\n.*)?" if multiline else "(\n)?") if ends == "$" else ("" if ends else ".*")
        rendered.append(f"{head}{body}{tail}")
    text = rendered[0] if len(rendered) == 1 else "|".join(f"({b})" for b in rendered)
    return LuceneRegex(text, (ASCII_NOTE,) if parser.shorthand else ())


class _Parser:
    """Recursive descent over Python's syntax, emitting Lucene's as it goes."""

    def __init__(self, pattern: str, *, ignore_case: bool, dotall: bool) -> None:
        self.text = pattern
        self.at = 0
        self.ignore_case = ignore_case
        self.dotall = dotall
        self.shorthand = False
        self.depth = 0

    def top_level(self) -> list[tuple[str, bool, str]]:
        """Each top-level branch: its body, whether ``^`` (or ``\\A``) starts it, and the
        anchor that ends it (``$``, ``\\Z`` or nothing)."""
        branches = []
        while True:
            starts = self._take("^") or self._take("\\A")
            body = self._sequence()
            ends = "$" if self._take("$") else ("\\Z" if self._take("\\Z") else "")
            if not self._done() and not self._peek("|"):
                raise self._unsupported("an anchor inside the pattern")
            branches.append((body, starts, ends))
            if not self._take("|"):
                return branches

    def _alternation(self) -> str:
        parts = [self._sequence()]
        while self._take("|"):
            parts.append(self._sequence())
        return "|".join(p or "()" for p in parts)

    def _sequence(self) -> str:
        out = []
        while not self._done() and not self._peek("|") and not self._peek(")"):
            if self.depth == 0 and (
                (self._peek("$") and self._at_end_after(1))
                or (self._peek("\\Z") and self._at_end_after(2))
            ):
                break
            atom = self._atom()
            out.append(atom + self._quantifier())
        return "".join(out)

    def _atom(self) -> str:
        char = self._next()
        if char == "(":
            return self._group()
        if char == "[":
            return self._class()
        if char == ".":
            return "." if self.dotall else "[^\n]"
        if char in "^$":
            raise self._unsupported("an anchor inside the pattern")
        if char == "\\":
            return self._escape()
        if char in "*+?":
            raise self._unsupported(f"a repeat with nothing to repeat at {char!r}")
        return _literal(char, self.ignore_case)

    def _group(self) -> str:
        if self._take("?:") or self._take_named():
            pass
        elif self._peek("?"):
            raise self._unsupported("look-around, inline flags and conditionals")
        self.depth += 1
        inner = self._alternation()
        self.depth -= 1
        if not self._take(")"):
            raise self._unsupported("an unbalanced parenthesis")
        return f"({inner or '()'})"

    def _take_named(self) -> bool:
        match = re.compile(r"\?P<\w+>").match(self.text, self.at)
        if match is None:
            return False
        self.at = match.end()
        return True

    def _escape(self) -> str:
        char = self._next()
        lower = char.lower()
        if lower in _CLASSES:
            self.shorthand = True
            return _class_text(_CLASSES[lower], negated=char.isupper())
        return _literal(self._escaped_char(char), self.ignore_case)

    def _escaped_char(self, char: str) -> str:
        if char in _CHAR_ESCAPES:
            return _CHAR_ESCAPES[char]
        if char in _HEX:
            digits = self.text[self.at : self.at + _HEX[char]]
            self.at += len(digits)
            return chr(int(digits, 16))
        octal = _OCTAL.match(self.text, self.at - 1)
        if octal is not None:
            self.at = octal.end()
            return chr(int(octal.group(), 8))
        if char.isalnum() or char == "":
            raise self._unsupported(f"\\{char} (a back-reference, boundary or named character)")
        return char

    def _class(self) -> str:
        negated = self._take("^")
        ranges: list[tuple[int, int]] = []
        first = True
        while first or not self._peek("]"):
            if self._done():
                raise self._unsupported("an unterminated character class")
            first = False
            low = self._class_char(ranges)
            if low is None:
                continue
            if self._peek("-") and not self._peek("-]"):
                self.at += 1
                high = self._class_char(ranges)
                if high is None:
                    raise self._unsupported("a range to a shorthand class")
                ranges.append((ord(low), ord(high)))
            else:
                ranges.append((ord(low), ord(low)))
        self.at += 1
        if self.ignore_case:
            ranges = _with_other_case(ranges)
        return _class_text(tuple(ranges), negated=negated)

    def _class_char(self, ranges: list[tuple[int, int]]) -> str | None:
        """The next character of a class, or ``None`` for a shorthand class (its ranges are
        added to ``ranges``)."""
        char = self._next()
        if char != "\\":
            return char
        escaped = self._next()
        if escaped in _CLASSES:
            self.shorthand = True
            ranges.extend(_CLASSES[escaped])
            return None
        if escaped.lower() in _CLASSES:
            raise self._unsupported(f"\\{escaped} inside a character class")
        return "\b" if escaped == "b" else self._escaped_char(escaped)

    def _quantifier(self) -> str:
        if self._done():
            return ""
        char = self.text[self.at]
        if char in "*+?":
            self.at += 1
            quantifier = char
        else:
            match = _REPEAT.match(self.text, self.at)
            if match is None or not (match.group(1) or match.group(2)):
                return ""
            self.at = match.end()
            low, comma, high = match.group(1) or "0", match.group(2), match.group(3)
            quantifier = "{" + low + ("," + high if comma else "") + "}"
        if self._take("+"):
            raise self._unsupported("a possessive repeat")
        self._take("?")  # lazy or greedy: the same values match as a whole
        return quantifier

    def _peek(self, text: str) -> bool:
        return self.text.startswith(text, self.at)

    def _take(self, text: str) -> bool:
        if self._peek(text):
            self.at += len(text)
            return True
        return False

    def _at_end_after(self, width: int) -> bool:
        end = self.at + width
        return end == len(self.text) or self.text.startswith("|", end)

    def _next(self) -> str:
        if self._done():
            return ""
        char = self.text[self.at]
        self.at += 1
        return char

    def _done(self) -> bool:
        return self.at >= len(self.text)

    def _unsupported(self, what: str) -> UnsupportedRuleError:
        return UnsupportedRuleError(f"regular expression {self.text!r}: {what} has no Lucene form")


def literal_pattern(text: str, *, ignore_case: bool) -> str:
    """``text`` as a Lucene pattern that matches exactly it (letters of either case when
    ``ignore_case``).

    >>> literal_pattern("a.b", ignore_case=True)
    '[aA]\\\\.[bB]'
    """
    return "".join(_literal(char, ignore_case) for char in text)


def _literal(char: str, ignore_case: bool) -> str:
    if ignore_case:
        lower, upper = char.lower(), char.upper()
        if lower != upper and len(lower) == 1 and len(upper) == 1:
            return f"[{lower}{upper}]"
    return char if char.isalnum() else "\\" + char


def _class_text(ranges: tuple[tuple[int, int], ...], *, negated: bool) -> str:
    items = "".join(
        _literal(chr(low), False) + ("" if low == high else "-" + _literal(chr(high), False))
        for low, high in ranges
    )
    return f"[{'^' if negated else ''}{items}]"


def _with_other_case(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out = list(ranges)
    for low, high in ranges:
        if high > 0x7F and any(chr(c).lower() != chr(c).upper() for c in range(low, high + 1)):
            raise UnsupportedRuleError(
                "regular expression: a case-insensitive range of non-ASCII letters has no "
                "Lucene form"
            )
        for start, end, shift in ((97, 122, -32), (65, 90, 32)):
            a, b = max(low, start), min(high, end)
            if a <= b:
                out.append((a + shift, b + shift))
    return out
