"""Task tables from the three sources: typed, disjoint splits, deterministic, bad rows accounted for."""

import json
from pathlib import Path

import pandas as pd
import pytest

from ftlab import tables, tasks

DATA = Path(__file__).parent / "data" / "tasks"
SMALL = {"train": 30, "validation": 5, "test": 8}
EMBEDDED = {
    "chain_sum": ("numeric", {"min_terms": 2, "max_terms": 3, "min_digits": 1, "max_digits": 2}),
    "leg_counting": ("numeric", {"min_animals": 2, "max_animals": 3, "max_instances": 3}),
    "basic_arithmetic": (
        "numeric",
        {"min_terms": 2, "max_terms": 3, "min_digits": 1, "max_digits": 2},
    ),
    "syllogism": ("classification", {}),
    "family_relationships": ("short_answer", {"min_family_size": 3, "max_family_size": 4}),
    "gsm_symbolic": ("numeric", {}),
    "spell_backward": ("generation", {"min_word_len": 3, "max_word_len": 6}),
}
MAPPING = {"id": "qid", "question": "text", "answer": "label", "rationale": "why", "split": "part"}


def embedded(name, seed=0, sizes=SMALL, **extra):
    task_type, config = EMBEDDED.get(name, ("numeric", {}))
    spec = {
        "source": "embedded",
        "task_type": task_type,
        "generator_config": config,
        "sizes": sizes,
        "seed": seed,
        **extra,
    }
    return tasks.prepare(name, spec)


@pytest.mark.parametrize("name", sorted(EMBEDDED))
def test_embedded_generators_give_complete_disjoint_splits(name, tmp_path):
    table, quarantine = embedded(name)
    assert table["split"].value_counts().to_dict() == SMALL
    assert table["example_id"].is_unique and table["question"].is_unique
    assert (table["question"].str.len() > 0).all() and (table["answer"].str.len() > 0).all()
    assert table["gold_rationale"].notna().all() and (table["gold_rationale"].str.len() > 0).all()
    assert (table["task"] == name).all() and json.loads(table["metadata"].iloc[0])
    # the stage writes both frames through the shared schemas
    tables.write(table, tmp_path / "t.parquet", "tasks")
    tables.write(quarantine, tmp_path / "q.parquet", "quarantine")
    assert tables.read(tmp_path / "t.parquet", "tasks").equals(table)


def test_same_seed_same_table_other_seed_other_table():
    a, _ = embedded("chain_sum", seed=3)
    b, _ = embedded("chain_sum", seed=3)
    c, _ = embedded("chain_sum", seed=4)
    pd.testing.assert_frame_equal(a, b)
    assert set(a.loc[a.split == "test", "example_id"]) != set(
        c.loc[c.split == "test", "example_id"]
    )


def test_ids_are_content_hashes():
    table, _ = embedded("spell_backward")
    row = table.iloc[0]
    assert row["example_id"] == tasks.example_id("spell_backward", row["question"], None)
    assert len(row["example_id"]) == 16


def test_too_few_unique_questions_names_the_sizes_key():
    tiny = {"min_terms": 2, "max_terms": 2, "min_digits": 1, "max_digits": 1}  # at most 200
    with pytest.raises(ValueError, match=r"tasks\.tiny\.sizes"):
        tasks.prepare(
            "tiny",
            {
                "source": "embedded",
                "generator": "chain_sum",
                "generator_config": tiny,
                "sizes": {"train": 300},
            },
        )


def test_generator_without_solver_has_no_rationale():
    table, _ = tasks.prepare(
        "letters",
        {
            "source": "embedded",
            "generator": "letter_counting",
            "sizes": {"train": 5, "validation": 1, "test": 2},
        },
    )
    assert len(table) == 8 and table["gold_rationale"].isna().all()


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet"])
def test_file_source_maps_columns(fmt, tmp_path):
    path = DATA / f"qa.{fmt}"
    if fmt == "parquet":
        path = tmp_path / "qa.parquet"
        pd.read_json(DATA / "qa.jsonl", lines=True, dtype=False).astype({"label": str}).to_parquet(
            path
        )
    table, quarantine = tasks.prepare(
        "qa", {"source": "file", "path": str(path), "columns": MAPPING}
    )
    assert len(quarantine) == 0
    assert list(table["example_id"]) == ["q1", "q2", "q3", "q4", "q5"]
    assert list(table["split"]) == ["train", "train", "validation", "test", "test"]
    assert list(table["answer"]) == ["5", "6", "9", "4", "8"]
    assert pd.isna(table.loc[2, "gold_rationale"]) and table.loc[0, "gold_rationale"] == "2 + 3 = 5"
    assert json.loads(table.loc[0, "metadata"]) == {"source": "hand"}


def test_file_without_split_column_is_split_by_sizes():
    spec = {
        "source": "file",
        "path": str(DATA / "qa.jsonl"),
        "seed": 1,
        "columns": {"question": "text", "answer": "label"},
        "sizes": {"train": 3, "validation": 1, "test": 1},
    }
    table, _ = tasks.prepare("qa", spec)
    assert table["split"].value_counts().to_dict() == {"train": 3, "validation": 1, "test": 1}
    spec["sizes"] = {"train": 30}
    with pytest.raises(ValueError, match=r"tasks\.qa\.sizes"):
        tasks.prepare("qa", spec)


def bad_spec(**extra):
    return {
        "source": "file",
        "path": str(DATA / "bad.jsonl"),
        "task_type": "choice",
        "columns": {"choices": "choices"},
        "sizes": {"train": 2, "validation": 0, "test": 1},
        **extra,
    }


def test_bad_row_error_names_file_and_row():
    with pytest.raises(ValueError, match=r"bad\.jsonl: row 2: missing or empty question"):
        tasks.prepare("mc", bad_spec())


def test_skip_moves_bad_rows_to_quarantine(tmp_path):
    table, quarantine = tasks.prepare("mc", bad_spec(on_bad_rows="skip"))
    assert list(quarantine["row"]) == [2, 4, 5, 7]
    assert quarantine["reason"].head(3).str.contains("question|choices|JSON").all()
    assert quarantine.loc[2, "raw"] == "this is not json"
    # 7 rows = 3 bad rows + 1 repeated question (all quarantined) + 3 examples; nothing vanished
    assert len(table) == 3 and table["question"].is_unique
    assert table.set_index("question").loc["Which is blue?", "choices"] == ["sky", "grass"]
    tables.write(quarantine, tmp_path / "q.parquet", "quarantine")


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def test_skip_quarantines_a_repeated_question_naming_the_copy_kept(tmp_path):
    path = bad_spec()["path"]
    table, quarantine = tasks.prepare("mc", bad_spec(on_bad_rows="skip"))
    repeat = quarantine[quarantine["reason"].str.startswith("repeated question")]
    assert repeat.to_dict(orient="records") == [
        {
            "task": "mc",
            "source": path,
            "row": 7,
            "reason": f"repeated question (same as {path} row 1)",
            "raw": json.dumps(
                {
                    "answer": "B",
                    "choices": ["rock", "apple", "chair"],
                    "question": "Which is a fruit?",
                },
                sort_keys=True,
            ),
        }
    ]
    assert (table["question"] == "Which is a fruit?").sum() == 1  # the first copy is kept
    tables.write(quarantine, tmp_path / "q.parquet", "quarantine")
    assert tables.read(tmp_path / "q.parquet", "quarantine").equals(quarantine)


def test_a_question_repeated_across_splits_keeps_train_and_quarantines_the_rest(tmp_path):
    rows = [
        {"id": "t1", "q": "What is 1 + 1?", "a": "2", "part": "test"},
        {"id": "v1", "q": "What is 2 + 2?", "a": "4", "part": "validation"},
        {"id": "r1", "q": "What is 3 + 3?", "a": "6", "part": "train"},
        {"id": "r2", "q": "What is 1 + 1?", "a": "2", "part": "train"},
        {"id": "r3", "q": "What is 2 + 2?", "a": "4", "part": "train"},
        {"id": "t2", "q": "What is 5 + 5?", "a": "10", "part": "test"},
    ]
    path = write_jsonl(tmp_path / "splits.jsonl", rows)
    columns = {"id": "id", "question": "q", "answer": "a", "split": "part"}
    spec = {"source": "file", "path": path, "columns": columns, "on_bad_rows": "skip"}
    table, quarantine = tasks.prepare("s", spec)
    assert sorted(table["example_id"]) == ["r1", "r2", "r3", "t2"]  # train wins: splits disjoint
    assert list(quarantine["row"]) == [1, 2]  # in source order
    assert list(quarantine["reason"]) == [
        f"repeated question (same as {path} row 4, kept in train)",
        f"repeated question (same as {path} row 5, kept in train)",
    ]
    assert [json.loads(r)["id"] for r in quarantine["raw"]] == ["t1", "v1"]
    assert len(table) + len(quarantine) == len(rows)  # every row accounted for


def test_with_error_a_repeated_question_is_dropped_and_logged_not_an_error(tmp_path, caplog):
    rows = [{"question": f"q{i % 3}?", "answer": str(i % 3)} for i in range(5)]  # q0, q1 twice
    path = write_jsonl(tmp_path / "rep.jsonl", rows)
    sizes = {"train": 2, "validation": 0, "test": 1}
    with caplog.at_level("INFO", logger="ftlab.tasks"):
        table, quarantine = tasks.prepare("r", {"source": "file", "path": path, "sizes": sizes})
    assert sorted(table["question"]) == ["q0?", "q1?", "q2?"] and len(quarantine) == 0
    said = [r.getMessage() for r in caplog.records if "repeated" in r.getMessage()]
    assert said == ["task r: 2 repeated questions dropped"]
    _, skipped = tasks.prepare(
        "r", {"source": "file", "path": path, "sizes": sizes, "on_bad_rows": "skip"}
    )
    assert list(skipped["row"]) == [4, 5]
    assert list(skipped["reason"]) == [
        f"repeated question (same as {path} row 1)",
        f"repeated question (same as {path} row 2)",
    ]


def test_duplicate_ids_are_bad_rows(tmp_path):
    path = tmp_path / "dup.jsonl"
    rows = [{"id": 1, "question": "a?", "answer": "1"}, {"id": 1, "question": "b?", "answer": "2"}]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    with pytest.raises(ValueError, match=r"dup\.jsonl: row 2: duplicate id '1'"):
        tasks.prepare("d", {"source": "file", "path": str(path), "columns": {"id": "id"}})


def test_undecodable_text_is_a_bad_row(tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes(b"question,answer\nok?,1\ncaf\xe9?,2\n")
    spec = {
        "source": "file",
        "path": str(path),
        "on_bad_rows": "skip",
        "sizes": {"train": 1, "validation": 0, "test": 0},
    }
    table, quarantine = tasks.prepare("enc", spec)
    assert list(table["question"]) == ["ok?"]
    assert list(quarantine["row"]) == [2] and "UTF-8" in quarantine.loc[0, "reason"]


def test_hf_source_from_local_save_to_disk(tmp_path):
    datasets = pytest.importorskip("datasets")
    rows = {"q": ["1 + 1?", "2 + 2?", "3 + 3?"], "a": ["2", "4", "6"], "extra": [1, 2, 3]}
    dd = datasets.DatasetDict(
        {
            "train": datasets.Dataset.from_dict({k: v[:2] for k, v in rows.items()}),
            "dev": datasets.Dataset.from_dict({k: v[2:] for k, v in rows.items()}),
        }
    )
    dd.save_to_disk(str(tmp_path / "ds"))
    spec = {
        "source": "hf",
        "path": str(tmp_path / "ds"),
        "columns": {"question": "q", "answer": "a"},
        "hf_splits": {"train": "train", "test": "dev"},
    }
    table, _ = tasks.prepare("hub", spec)
    assert list(table["split"]) == ["train", "train", "test"]
    assert list(table["answer"]) == ["2", "4", "6"]
    assert json.loads(table.loc[2, "metadata"]) == {"extra": 3}
    with pytest.raises(ValueError, match=r"tasks\.hub\.hf_splits\.test: .* no split 'nope'"):
        tasks.prepare("hub", {**spec, "hf_splits": {"test": "nope"}})


def test_hf_repeated_question_names_the_other_source_split(tmp_path):
    datasets = pytest.importorskip("datasets")
    train = {"q": ["1 + 1?", "2 + 2?"], "a": ["2", "4"]}
    dev = {"q": ["2 + 2?", "3 + 3?"], "a": ["4", "6"]}
    dd = datasets.DatasetDict(
        {"train": datasets.Dataset.from_dict(train), "dev": datasets.Dataset.from_dict(dev)}
    )
    path = str(tmp_path / "ds")
    dd.save_to_disk(path)
    spec = {
        "source": "hf",
        "path": path,
        "columns": {"question": "q", "answer": "a"},
        "hf_splits": {"train": "train", "test": "dev"},
        "on_bad_rows": "skip",
    }
    table, quarantine = tasks.prepare("hub", spec)
    assert list(table["question"]) == ["1 + 1?", "2 + 2?", "3 + 3?"]
    assert quarantine[["source", "row", "reason"]].to_dict(orient="records") == [
        {
            "source": f"{path}[dev]",
            "row": 1,
            "reason": f"repeated question (same as {path}[train] row 2, kept in train)",
        }
    ]
