"""The column mapping on raw rows: nested paths, templates, labels, patterns, and clear errors."""

import numpy as np
import pandas as pd
import pytest

from ftlab import task_columns, tasks
from ftlab.task_columns import BadRow


def test_paths_reach_into_dicts_lists_and_json_text():
    raw = {
        "choices": {"text": np.array(["a", "b"]), "label": ["A", "B"]},
        "answers": '{"text": ["x", "y"]}',  # a CSV cell holding the nested value as JSON
        "flat.name": "kept",  # a column whose name has a dot is read as it is
        "list": [{"t": 1}, {"t": 2}],
    }
    assert list(task_columns.get(raw, "choices.text")) == ["a", "b"]
    assert task_columns.get(raw, "answers.text.1") == "y"
    assert task_columns.get(raw, "answers.text.5") is None
    assert task_columns.get(raw, "flat.name") == "kept"
    assert task_columns.get(raw, "list.*.t") == [1, 2]
    with pytest.raises(BadRow, match=r"choices\.text\.x: cannot take 'x'"):
        task_columns.get(raw, "choices.text.x")


def test_labels_are_looked_up_by_their_text():
    labels = {"0": "entailment", "true": "Yes", "false": "No"}
    assert task_columns.relabel(np.int64(0), labels) == "entailment"
    assert task_columns.relabel(0.0, labels) == "entailment"
    assert task_columns.relabel(np.bool_(False), labels) == "No"
    assert task_columns.relabel("True", labels) == "Yes"  # a CSV cell
    with pytest.raises(BadRow, match=r"answer '-1' is not one of columns\.answer_labels"):
        task_columns.relabel(-1, labels)


def test_answer_pattern_errors_name_the_file_and_row(tmp_path):
    path = tmp_path / "gsm.csv"
    pd.DataFrame({"question": ["a?", "b?"], "answer": ["so 4\n#### 4", "no marker"]}).to_csv(
        path, index=False
    )
    spec = {"source": "file", "path": str(path), "columns": {"answer_pattern": r"####\s*(\S+)"}}
    with pytest.raises(ValueError, match=r"gsm\.csv: row 2: answer does not match"):
        tasks.prepare("gsm", spec)
    table, quarantine = tasks.prepare(
        "gsm", {**spec, "on_bad_rows": "skip", "sizes": {"train": 1, "validation": 0, "test": 0}}
    )
    assert table.loc[0, "answer"] == "4" and table.loc[0, "gold_rationale"] == "so 4"
    assert list(quarantine["row"]) == [2]


def test_template_fields_must_exist_in_the_source(tmp_path):
    path = tmp_path / "nli.jsonl"
    path.write_text('{"premise": "p", "label": 0}\n')
    spec = {
        "source": "file",
        "path": str(path),
        "columns": {"question_template": "{premise} / {hypothesis}", "answer": "label"},
    }
    with pytest.raises(ValueError, match=r"missing column\(s\) \['hypothesis'\]"):
        tasks.prepare("nli", spec)


def test_bad_regex_names_the_config_key():
    spec = {"source": "file", "path": "x.csv", "columns": {"rationale_remove": "<<("}}
    with pytest.raises(ValueError, match=r"tasks\.t\.columns\.rationale_remove: not a valid regex"):
        tasks.TaskSpec.from_config("t", spec)
