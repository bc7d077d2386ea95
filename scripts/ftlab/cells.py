"""Values read back from Parquet cells."""

from __future__ import annotations


def choices(value) -> list[str] | None:
    """A task table's `choices` cell as a list of strings, or None when the cell is missing.

    Parquet gives a numpy array; a missing cell may come back as None or NaN (pandas), and an
    empty list is no choices either (task tables never hold one: `task_columns.choices`).
    """
    if value is None or (isinstance(value, float) and value != value) or len(value) == 0:
        return None
    return [str(c) for c in value]
