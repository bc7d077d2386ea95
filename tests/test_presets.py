"""Presets for the seed papers' datasets: each yields a correct typed table from a local copy
that reproduces the dataset's real schema (hub `save_to_disk` dirs, JSONL, CSV, Parquet)."""

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml
from snakemake.utils import validate

from ftlab import configcheck, presets, tables, tasks

SCHEMA = Path(__file__).resolve().parents[1] / "resources" / "config.schema.yaml"

datasets = pytest.importorskip("datasets")


def save_to_disk(path, splits: dict[str, list[dict]]):
    dd = datasets.DatasetDict({k: datasets.Dataset.from_list(v) for k, v in splits.items()})
    dd.save_to_disk(str(path))
    return str(path)


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def prepare(name, preset, path, tmp_path, **override):
    table, quarantine = tasks.prepare(name, {"preset": preset, "path": path, **override})
    tables.write(table, tmp_path / f"{name}.parquet", "tasks")  # typed by the shared schema
    return table.set_index("example_id", drop=False), quarantine


def gsm8k_row(i):
    return {
        "question": f"Natalia sold clips to {i} friends, 2 each. How many clips?",
        "answer": f"She sold {i} * 2 = <<{i}*2={2 * i}>>{2 * i} clips.\n#### {2 * i:,}",
    }


def test_gsm8k_from_save_to_disk(tmp_path):
    path = save_to_disk(
        tmp_path / "gsm8k",
        {"train": [gsm8k_row(i) for i in range(1, 6)], "test": [gsm8k_row(600), gsm8k_row(7)]},
    )
    sizes = {"train": 3, "validation": 2, "test": 2}
    table, _ = prepare("gsm8k", "gsm8k", path, tmp_path, sizes=sizes)
    assert table["split"].value_counts().to_dict() == sizes  # validation drawn from train
    row = table[table["question"].str.contains(" 600 ")].iloc[0]
    assert row["split"] == "test" and row["answer"] == "1,200"  # "1,200" is numeric 1200
    assert row["gold_rationale"] == "She sold 600 * 2 = 1200 clips."  # annotation removed
    assert (table["task_type"] == "numeric").all() and table["choices"].isna().all()
    again, _ = prepare("gsm8k", "gsm8k", path, tmp_path, sizes=sizes)
    pd.testing.assert_frame_equal(table, again)  # the validation draw is seeded


def csqa_row(i, answer="B"):
    return {
        "id": f"q{i}",
        "question": f"Where would you put item {i}?",
        "question_concept": "item",
        "choices": {"label": list("ABCDE"), "text": ["bank", "shelf", "sea", "moon", "sky"]},
        "answerKey": answer,
    }


def test_commonsense_qa_nested_choices_and_unlabelled_test(tmp_path):
    path = save_to_disk(
        tmp_path / "csqa",
        {
            "train": [csqa_row(i) for i in range(4)],
            "validation": [csqa_row(10, "E"), csqa_row(11, "A")],
            "test": [csqa_row(20, "")],  # the real test split has no answers: never read
        },
    )
    sizes = {"train": 3, "validation": 1, "test": 2}
    table, quarantine = prepare("csqa", "commonsense_qa", path, tmp_path, sizes=sizes)
    assert table["split"].value_counts().to_dict() == sizes and len(quarantine) == 0
    assert table.loc["q10", "split"] == "test" and table.loc["q10", "answer"] == "E"
    assert list(table.loc["q10", "choices"]) == ["bank", "shelf", "sea", "moon", "sky"]
    assert json.loads(table.loc["q10", "metadata"]) == {"question_concept": "item"}


def obqa_rows():
    choices = {"text": ["wood", "iron", "glass", "paper"], "label": list("ABCD")}
    return [
        {
            "id": f"7-{i}",
            "question_stem": f"Which conducts heat best, case {i}?",
            "choices": choices,
            "answerKey": "B",
        }
        for i in range(4)
    ]


def test_openbookqa_from_parquet_with_struct_column(tmp_path):
    pd.DataFrame(obqa_rows()).to_parquet(tmp_path / "obqa.parquet")
    table, _ = prepare(
        "obqa",
        "openbookqa",
        str(tmp_path / "obqa.parquet"),
        tmp_path,
        source="file",
        sizes={"train": 2, "validation": 1, "test": 1},
    )
    assert len(table) == 4 and (table["answer"] == "B").all()
    assert list(table.loc["7-0", "choices"]) == ["wood", "iron", "glass", "paper"]
    assert table.loc["7-0", "question"] == "Which conducts heat best, case 0?"


def test_openbookqa_original_jsonl_through_a_list_path(tmp_path):
    rows = [
        {
            "id": r["id"],
            "answerKey": "C",
            "question": {
                "stem": r["question_stem"],
                "choices": [
                    {"text": t, "label": lab}
                    for t, lab in zip(r["choices"]["text"], r["choices"]["label"], strict=True)
                ],
            },
        }
        for r in obqa_rows()
    ]
    columns = {"question": "question.stem", "choices": "question.choices.*.text"}
    table, _ = prepare(
        "obqa",
        "openbookqa",
        write_jsonl(tmp_path / "obqa.jsonl", rows),
        tmp_path,
        source="file",
        columns=columns,
        sizes={"train": 4, "validation": 0, "test": 0},
    )
    assert list(table.loc["7-1", "choices"]) == ["wood", "iron", "glass", "paper"]
    assert table.loc["7-1", "answer"] == "C" and table.loc["7-1", "question"].endswith("case 1?")


def test_quarel_answer_index_from_csv(tmp_path):
    rows = [
        {
            "id": "QuaRel_V1_Fr_0223",
            "answer_index": "1",
            "logical_forms": "[]",
            "question": "Mike slid on snow then ice. Ice is _____ (A) rougher (B) smoother",
        },
        {
            "id": "QuaRel_V1_Fr_0224",
            "answer_index": "0",
            "logical_forms": "[]",
            "question": "A car goes faster on (A) asphalt (B) gravel",
        },
    ]
    pd.DataFrame(rows).to_csv(tmp_path / "quarel.csv", index=False)
    table, _ = prepare(
        "quarel",
        "quarel",
        str(tmp_path / "quarel.csv"),
        tmp_path,
        source="file",
        sizes={"train": 1, "validation": 0, "test": 1},
    )
    assert table.loc["QuaRel_V1_Fr_0223", "answer"] == "B"
    assert table.loc["QuaRel_V1_Fr_0224", "answer"] == "A"
    assert (table["task_type"] == "choice").all()


def test_strategyqa_boolean_answers_and_fact_lists(tmp_path):
    rows = [
        {
            "qid": "a1",
            "term": "Aristotle",
            "description": "philosopher",
            "question": "Did Aristotle use a laptop?",
            "answer": False,
            "facts": ["Aristotle died in 322 BC.", "Laptops were invented in the 1980s."],
        },
        {
            "qid": "a2",
            "term": "Sun",
            "description": "star",
            "question": "Is the sun hot?",
            "answer": True,
            "facts": ["The sun is a star."],
        },
    ]
    table, _ = prepare(
        "sqa",
        "strategyqa",
        write_jsonl(tmp_path / "sqa.jsonl", rows),
        tmp_path,
        source="file",
        sizes={"train": 2, "validation": 0, "test": 0},
    )
    assert table.loc["a1", "answer"] == "No" and table.loc["a2", "answer"] == "Yes"
    assert table.loc["a1", "gold_rationale"] == (
        "Aristotle died in 322 BC. Laptops were invented in the 1980s."
    )


def nli_row(i, label, **extra):
    return {
        "premise": f"A man plays guitar number {i}.",
        "hypothesis": "A man makes music.",
        "label": label,
        **extra,
    }


def test_anli_rounds_and_label_names_from_save_to_disk(tmp_path):
    splits = {
        "train_r1": [nli_row(i, i % 3, uid=f"t{i}", reason="He plays it.") for i in range(3)],
        "dev_r1": [nli_row(10, 2, uid="d10", reason="")],
        "test_r1": [nli_row(20, 1, uid="x20", reason="Unclear.")],
        "train_r2": [nli_row(30, 0, uid="r2", reason="")],
    }
    path = save_to_disk(tmp_path / "anli", splits)
    table, _ = prepare(
        "anli", "anli", path, tmp_path, sizes={"train": 3, "validation": 1, "test": 1}
    )
    assert table.loc["x20", "split"] == "test" and table.loc["x20", "answer"] == "neutral"
    assert table.loc["d10", "answer"] == "contradiction" and pd.isna(
        table.loc["d10", "gold_rationale"]
    )
    assert (
        table.loc["t0", "answer"] == "entailment"
        and table.loc["t0", "gold_rationale"] == "He plays it."
    )
    assert table.loc["x20", "question"] == (
        "Premise: A man plays guitar number 20.\nHypothesis: A man makes music.\n"
        "Does the premise entail the hypothesis? Answer entailment, neutral or contradiction."
    )
    assert "r2" not in table.index  # rounds 2 and 3 only when hf_splits asks for them


def test_esnli_unlabelled_pairs_are_quarantined(tmp_path):
    rows = [
        nli_row(i, lab, explanation_1=f"why {i}", explanation_2=None, explanation_3=None)
        for i, lab in enumerate([0, 1, -1, 2])
    ]
    pd.DataFrame(rows).to_csv(tmp_path / "esnli.csv", index=False)
    table, quarantine = prepare(
        "esnli",
        "esnli",
        str(tmp_path / "esnli.csv"),
        tmp_path,
        source="file",
        sizes={"train": 3, "validation": 0, "test": 0},
    )
    assert sorted(table["answer"]) == ["contradiction", "entailment", "neutral"]
    assert list(quarantine["row"]) == [3] and "answer_labels" in quarantine.loc[0, "reason"]
    rationale = table.set_index("answer").loc["neutral", "gold_rationale"]
    assert rationale == "why 1"


def test_xsum_summarisation_prompt(tmp_path):
    rows = [
        {
            "document": f"Storms hit the coast on day {i}. Roads closed.",
            "summary": f"Storms closed roads on day {i}.",
            "id": str(3000 + i),
        }
        for i in range(3)
    ]
    table, _ = prepare(
        "xsum",
        "xsum",
        write_jsonl(tmp_path / "xsum.jsonl", rows),
        tmp_path,
        source="file",
        sizes={"train": 2, "validation": 0, "test": 1},
    )
    assert table.loc["3001", "question"] == (
        "Write a one-sentence summary of: Storms hit the coast on day 1. Roads closed."
    )
    assert table.loc["3001", "answer"] == "Storms closed roads on day 1."
    assert (table["task_type"] == "generation").all()
    assert table["metadata"].map(json.loads).eq({}).all()  # the document is not repeated


def test_squad_question_generation_from_save_to_disk(tmp_path):
    def row(i):
        return {
            "id": f"s{i}",
            "title": "Normans",
            "context": f"The Normans lived in region {i}.",
            "question": f"Where did the Normans live in case {i}?",
            "answers": {"text": [f"region {i}"], "answer_start": [24]},
        }

    path = save_to_disk(
        tmp_path / "squad", {"train": [row(i) for i in range(4)], "validation": [row(9)]}
    )
    table, _ = prepare(
        "qg", "squad_qg", path, tmp_path, sizes={"train": 3, "validation": 1, "test": 1}
    )
    assert table.loc["s9", "split"] == "test"
    assert table.loc["s9", "question"] == (
        'Write a question about the passage whose answer is "region 9".\n'
        "Passage: The Normans lived in region 9."
    )
    assert table.loc["s9", "answer"] == "Where did the Normans live in case 9?"


# --- merging and config -------------------------------------------------------------------------


def test_task_keys_win_and_columns_merge_key_by_key():
    merged = presets.apply(
        "g", {"preset": "gsm8k", "path": "x", "columns": {"rationale_remove": None}}
    )
    assert merged["path"] == "x" and merged["source"] == "hf" and merged["task_type"] == "numeric"
    assert merged["columns"]["rationale_remove"] is None
    assert merged["columns"]["answer_pattern"].startswith("####")
    assert presets.apply("g", {"preset": "gsm8k"}) == presets.apply(
        "g", presets.apply("g", {"preset": "gsm8k"})
    )


def test_every_preset_is_a_valid_task_entry():
    models = {"student": {"source": "hf", "name_or_path": "local/model"}}
    config = {"tasks": {name: {"preset": name} for name in presets.names()}, "models": models}
    assert configcheck.expand_presets(config) == []
    assert configcheck.schema_errors(config, SCHEMA) == []
    validate(config, schema=str(SCHEMA))  # fills defaults around the preset's values
    for name in presets.names():
        spec = config["tasks"][name]
        assert spec["source"] == "hf" and spec["preset"] == name
        tasks.TaskSpec.from_config(name, spec)  # regexes compile, required keys present
    assert config["tasks"]["commonsense_qa"]["task_type"] == "choice"  # not the schema default


def test_every_preset_passes_every_config_check():
    """Cross-references included: each preset's hf_splits gives the evaluated test split."""
    models = {"student": {"source": "hf", "name_or_path": "local/model"}}
    config = {"tasks": {name: {"preset": name} for name in presets.names()}, "models": models}
    assert configcheck.problems(config, SCHEMA) == []
    assert all("test" in config["tasks"][name]["hf_splits"] for name in presets.names())


def test_unknown_preset_names_the_key():
    config = yaml.safe_load("tasks: {gsm: {preset: gsm9k}}")
    assert configcheck.expand_presets(config) == [
        f"tasks.gsm.preset: unknown preset 'gsm9k' (known: {presets.names()})"
    ]
    with pytest.raises(ValueError, match=r"tasks\.gsm\.preset: unknown preset"):
        tasks.prepare("gsm", {"preset": "gsm9k"})
