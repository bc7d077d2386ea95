"""Values out of one raw source row: the column mapping of a file or hub task (`columns:`).

Each field is a column name or a dotted path into a nested column (`choices.text`,
`answers.text.0`; a nested value kept as JSON text in a CSV cell is decoded on the way). Transforms
for real schemas, all declarative: `question_template` ("Premise: {premise}"), `answer_labels`
(label id or boolean -> answer), `answer_pattern` (regex; the text before the match becomes the
rationale), `rationale_remove` (regex). Every check raises `BadRow` with a reason that names the
field, so `tasks.py` can name the file and the row.
"""

from __future__ import annotations

import json
import math
import re
from fractions import Fraction

import numpy as np

from ftlab import answers

FIELD = re.compile(r"\{([^{}]+)\}")
PATH_KEYS = ("id", "question", "answer", "rationale", "choices", "split")


class BadRow(ValueError):
    """One source row that cannot become an example."""


def paths(cols: dict) -> list[str]:
    """Every column or dotted path the mapping reads (a template's fields included)."""
    template = cols["question_template"]
    read = [cols[k] for k in PATH_KEYS if cols[k] and not (k == "question" and template)]
    return list(dict.fromkeys(read + FIELD.findall(template or "")))


def present(path: str, columns) -> bool:
    """Whether a frame with `columns` has `path` (as a column, or its first dotted part)."""
    return path in columns or path.split(".")[0] in columns


def fields(cols: dict, raw: dict) -> tuple[str, list[str] | None, str, str | None]:
    """(question, choices, answer, rationale) of one raw row, by the column mapping `cols`."""
    if cols["question_template"]:
        question = text(fill(cols["question_template"], raw), "question")
    else:
        question = text(get(raw, cols["question"]), "question")
    answer = get(raw, cols["answer"])
    if cols["answer_labels"] is not None and not missing(answer):
        answer = relabel(answer, cols["answer_labels"])
    answer = text(answer, "answer", numbers_ok=True)
    rationale = None
    if cols["rationale"]:
        rationale = text(joined(get(raw, cols["rationale"])), "rationale", required=False)
    if cols["answer_pattern"]:
        answer, before = extract(answer, cols["answer_pattern"])
        rationale = rationale if cols["rationale"] else before
    if rationale and cols["rationale_remove"]:
        rationale = re.sub(cols["rationale_remove"], "", rationale).strip() or None
    choices_ = choices(get(raw, cols["choices"])) if cols["choices"] else None
    return question, choices_, answer, rationale


def get(raw: dict, path: str):
    """The value at `path`: a column, or a dotted path into nested dicts and lists.

    A number picks a list item (`answers.text.0`), `*` maps over a list (`question.choices.*.text`
    in the original OpenBookQA files); a nested value kept as JSON text (a CSV cell) is decoded.
    """
    if path in raw:
        return raw[path]
    head, *rest = path.split(".")
    return _walk(raw.get(head), rest, path)


def _walk(value, parts: list[str], path: str):
    for i, part in enumerate(parts):
        if isinstance(value, str) and value.lstrip()[:1] in ("{", "["):
            try:
                value = json.loads(value)
            except json.JSONDecodeError:
                raise BadRow(f"{path}: {value[:40]!r} is not valid JSON") from None
        if missing(value):
            return None
        is_list = isinstance(value, list | tuple | np.ndarray)
        if isinstance(value, dict):
            value = value.get(part)
        elif is_list and part == "*":
            return [_walk(v, parts[i + 1 :], path) for v in value]
        elif is_list and part.isdigit():
            value = value[int(part)] if int(part) < len(value) else None
        else:
            raise BadRow(f"{path}: cannot take {part!r} of a {type(value).__name__}")
    return value


def joined(value):
    """A list of strings (StrategyQA's facts, a SQuAD answer list) as one text."""
    if isinstance(value, list | tuple | np.ndarray):
        return " ".join(str(v).strip() for v in value if not missing(v)) or None
    return value


def fill(template: str, raw: dict) -> str:
    """`question_template` with each `{path}` replaced by that value of the row."""

    def value(m: re.Match) -> str:
        return text(joined(get(raw, m.group(1))), m.group(1), numbers_ok=True)

    return FIELD.sub(value, template)


def label_key(value) -> str:
    """How a raw label is looked up in `answer_labels`: 0 -> "0", True -> "true", "A" -> "A"."""
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    if isinstance(value, int | np.integer) or (
        isinstance(value, float | np.floating) and float(value).is_integer()
    ):
        return str(int(value))
    return str(value).strip()


def relabel(value, labels: dict) -> str:
    key = label_key(value)
    for candidate in (key, key.lower()):
        if candidate in labels:
            return labels[candidate]
    raise BadRow(f"answer {key!r} is not one of columns.answer_labels {sorted(labels)}")


def extract(value: str, pattern: str) -> tuple[str, str | None]:
    """(answer, text before it) by `answer_pattern`: its `answer` group, else group 1 or all."""
    m = re.search(pattern, value, flags=re.DOTALL)
    if not m:
        raise BadRow(f"answer does not match columns.answer_pattern {pattern!r}")
    groups = m.groupdict()
    found = groups["answer"] if "answer" in groups else (m.group(1) if m.groups() else m.group(0))
    answer = text(found, "answer (answer_pattern)", numbers_ok=True)
    return answer, value[: m.start()].strip() or None


def missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def text(value, what: str, required: bool = True, numbers_ok: bool = False) -> str | None:
    if missing(value) or (isinstance(value, str) and not value.strip()):
        if required:
            raise BadRow(f"missing or empty {what}")
        return None
    if (
        numbers_ok
        and isinstance(value, int | float | np.integer | np.floating)
        and not isinstance(value, bool)
    ):
        value = answers.format_number(Fraction(str(value)))
    if not isinstance(value, str):
        raise BadRow(f"{what} must be text, got {type(value).__name__}")
    if any("\udc80" <= ch <= "\udcff" for ch in value):
        raise BadRow(f"{what} is not valid UTF-8 text")
    return value.strip()


def choices(value) -> list[str] | None:
    if missing(value):
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise BadRow(f"choices {value[:40]!r} is not a JSON list") from None
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if not isinstance(value, list | tuple) or not value:
        raise BadRow(f"choices must be a non-empty list, got {type(value).__name__}")
    return [text(c, "choice", numbers_ok=True) for c in value]


def plain(value):
    """A JSON-ready copy: numpy values as Python ones, undecodable bytes replaced, NaN as null."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [plain(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, str):
        return value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    if missing(value):
        return None
    return value if isinstance(value, int | float | bool) else str(value)


def dumps(obj: dict) -> str:
    if "__raw__" in obj and isinstance(obj["__raw__"], str):
        return plain(obj["__raw__"])  # a line that did not parse: keep it as it was
    return json.dumps(
        plain({k: v for k, v in obj.items() if not str(k).startswith("__")}),
        sort_keys=True,
        ensure_ascii=False,
    )
