"""Answer normalisation: what a model wrote -> a canonical answer string, and whether it is right.

One function per direction so every stage compares answers the same way:

* `parse(raw, task_type, choices)` never raises; it returns the canonical answer or None when
  nothing usable is there (None counts as a *format* error, distinct from a wrong answer).
* `is_correct(parsed, gold, task_type, choices)` parses the gold answer the same way and compares.

Canonical forms: numbers as exact decimals ("1,000" and "1000.0" -> "1000", "3/4" -> "0.75",
non-terminating fractions as "1/3"); choices as a letter ("B"); yes/no as "Yes"/"No"; other text
lower-cased with whitespace collapsed.
"""

from __future__ import annotations

import re
from fractions import Fraction

import pandas as pd

from ftlab.prompts import LETTERS

TASK_TYPES = ("numeric", "choice", "classification", "generation", "short_answer")

_NUMBER = re.compile(
    r"(?<![\w.])[-+−]?(?:\d+(?:\.\d+)?(?:[eE][-+]?\d+|\s*/\s*\d+(?![.\d]))?|\.\d+)"
)
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}\b)")
_YES = {"yes", "true", "correct", "valid"}
_NO = {"no", "false", "incorrect", "invalid"}
_LETTER_ALONE = re.compile(r"^\(?([A-Za-z])\)?[.:]?$")
_LETTER_LEAD = re.compile(r"^\(?([A-Z])\)(?:\s|$)|^([A-Z])[.:](?:\s|$)")
_LETTER_PAREN = re.compile(r"\(([A-Z])\)")


def _text(raw) -> str | None:
    if raw is None or (isinstance(raw, float) and raw != raw):
        return None
    text = " ".join(str(raw).split())
    return text or None


def format_number(value: Fraction) -> str:
    """Exact canonical text of a rational: integer, terminating decimal, or "p/q"."""
    if value.denominator == 1:
        return str(value.numerator)
    den = value.denominator
    for p in (2, 5):
        while den % p == 0:
            den //= p
    if den != 1:
        return f"{value.numerator}/{value.denominator}"
    digits = 0
    while (value * 10**digits).denominator != 1:
        digits += 1
    scaled = abs(value.numerator * 10**digits // value.denominator)
    sign = "-" if value < 0 else ""
    whole, frac = divmod(scaled, 10**digits)
    return f"{sign}{whole}.{frac:0{digits}d}"


def _number(text: str) -> Fraction | None:
    """The first number in `text` (thousands separators allowed; LaTeX via math-verify)."""
    if "\\" in text and (value := _latex_number(text)) is not None:
        return value
    m = _NUMBER.search(_THOUSANDS.sub("", text).replace("−", "-"))
    if not m:
        return None
    try:
        return Fraction(m.group(0).replace(" ", ""))
    except (ValueError, ZeroDivisionError):
        return None


def _latex_number(text: str) -> Fraction | None:
    try:
        from math_verify import parse as mv_parse

        for item in mv_parse(text):
            if getattr(item, "is_number", False) and item.is_rational:
                return Fraction(int(item.p), int(item.q))
    except Exception:  # math-verify raises many kinds of errors on odd input; parse never raises
        return None
    return None


def _choice(text: str, choices: list[str] | None) -> str | None:
    n = len(choices) if choices else len(LETTERS)
    valid = set(LETTERS[:n])
    for pattern in (_LETTER_ALONE, _LETTER_LEAD):
        m = pattern.match(text)
        if m:
            letter = (m.group(1) or m.group(2)).upper()
            if letter in valid:
                return letter
    norm = text.lower().rstrip(".")
    for letter, choice in zip(LETTERS, choices or [], strict=False):
        if norm == " ".join(str(choice).split()).lower().rstrip("."):
            return letter
    m = _LETTER_PAREN.search(text)
    if m and m.group(1) in valid:
        return m.group(1)
    return None


def _label(text: str, choices: list[str] | None) -> str | None:
    first = re.split(r"[\s.,!:;]+", text.lower().strip(" '\"*"), maxsplit=1)[0]
    if first in _YES:
        return "Yes"
    if first in _NO:
        return "No"
    if choices:  # a classification task with its label set given as choices
        norm = text.lower().rstrip(".")
        matches = [c for c in choices if " ".join(str(c).split()).lower() == norm]
        return str(matches[0]) if matches else None
    return _free_text(text)


def _free_text(text: str) -> str | None:
    norm = text.strip().strip("\"'`").strip().rstrip(".").strip().lower()
    return norm or None


def parse(raw: str | None, task_type: str, choices: list[str] | None = None) -> str | None:
    """Canonical answer in `raw`, or None if there is none. Never raises."""
    try:
        text = _text(raw)
        if text is None:
            return None
        if choices is not None and not isinstance(choices, list):
            choices = list(choices)
        match task_type:
            case "numeric":
                value = _number(text)
                return None if value is None else format_number(value)
            case "choice":
                return _choice(text, choices)
            case "classification":
                return _label(text, choices)
            case "generation" | "short_answer":
                return _free_text(text)
        return None
    except Exception:
        return None


def is_correct(
    parsed: str | None, gold: str, task_type: str, choices: list[str] | None = None
) -> bool:
    """Whether a parsed answer equals the gold answer (normalised the same way)."""
    if parsed is None:
        return False
    want = parse(gold, task_type, choices)
    if want is None:
        return False
    if task_type == "classification":
        return parsed.lower() == want.lower()
    return parsed == want


def parse_failures(parsed: pd.Series) -> int:
    """How many answers could not be parsed (format errors, as opposed to wrong answers)."""
    return int(parsed.isna().sum())
