"""Evaluation of a saved model directory on a task table: the eval schema, one row per example x mode."""

import json

import pandas as pd
import pytest
import torch
from factories import save_model_dir, tiny_model, tiny_tokenizer

from ftlab import evaluate, generate, prompts, tables

torch.set_num_threads(1)

SETTINGS = {
    "modes": ["direct", "cot"],
    "max_new_tokens_direct": 6,
    "max_new_tokens_cot": 12,
    "batch_size": 3,
    "limit": None,
}


def task_table(n_test=5):
    rows = []
    for i in range(n_test + 2):
        rows.append(
            {
                "example_id": f"chain_sum-{i}",
                "task": "chain_sum",
                "split": "test" if i < n_test else "train",
                "task_type": "numeric",
                "question": f"What is {i} + {i + 1}?",
                "choices": None,
                "answer": str(2 * i + 1),
                "gold_rationale": None,
                "metadata": json.dumps({}),
            }
        )
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    tok = tiny_tokenizer()
    return save_model_dir(tiny_model(tok), tok, tmp_path_factory.mktemp("model"))


@pytest.fixture(scope="module")
def result(model_dir):
    return evaluate.run(model_dir, task_table(), run="tiny", settings=SETTINGS, threads=1)


def test_one_row_per_example_and_mode_in_the_eval_schema(result, tmp_path):
    df, device = result
    assert device == "cpu"
    assert list(df.columns) == tables.schema("eval").names
    assert len(df) == 5 * 2
    assert sorted(df.groupby("mode").size().items()) == [("cot", 5), ("direct", 5)]
    assert set(df["example_id"]) == {f"chain_sum-{i}" for i in range(5)}  # test split only
    assert (df["run"] == "tiny").all()
    assert df.loc[df["mode"] == "direct", "rationale"].isna().all()
    assert df.loc[~df["parse_ok"], "parsed_answer"].isna().all()
    assert not (df["correct"] & ~df["parse_ok"]).any()
    tables.write(df, tmp_path / "eval.parquet", "eval")  # schema-checked round trip
    assert len(tables.read(tmp_path / "eval.parquet", "eval")) == 10


def test_rows_match_a_direct_generation_of_the_saved_model(result, model_dir):
    df, _ = result
    from ftlab import models

    model, tok = models.load(model_dir, device="cpu")
    test = task_table().head(5)
    cot = generate.greedy(
        model,
        tok,
        [prompts.cot_prompt(q) for q in test["question"]],
        max_new_tokens=12,
        progress=False,
    )
    rows = df[df["mode"] == "cot"].reset_index(drop=True)
    assert list(rows["generation"]) == [g.text for g in cot]
    assert list(rows["prompt"]) == [prompts.cot_prompt(q) for q in test["question"]]
    assert list(rows["generated_tokens"]) == [g.generated_tokens for g in cot]
    direct = df[df["mode"] == "direct"]
    assert not direct["generation"].str.contains("\n").any()
    assert (direct["generated_tokens"] <= 6).all()


def test_correct_is_computed_against_gold(model_dir):
    """Gold = the model's own direct answer on even examples, something else on odd ones."""
    settings = dict(SETTINGS, modes=["direct"])
    table = task_table(6).assign(task_type="generation")
    first, _ = evaluate.run(model_dir, table, run="tiny", settings=settings, threads=1)
    said = [prompts.split_direct(g) for g in first["generation"]]
    assert all(said), "fixture model should write something on every direct prompt"
    table.loc[:5, "answer"] = [s.upper() if i % 2 == 0 else s + " nope" for i, s in enumerate(said)]
    df, _ = evaluate.run(model_dir, table, run="tiny", settings=settings, threads=1)
    assert list(df["correct"]) == [i % 2 == 0 for i in range(6)]
    assert df["parse_ok"].all()
    assert list(df["answer"]) == list(table["answer"][:6])


def test_limit_and_modes_from_settings(model_dir):
    settings = dict(SETTINGS, modes=["direct"], limit=2)
    df, _ = evaluate.run(model_dir, task_table(), run="tiny", settings=settings, threads=1)
    assert list(df["mode"]) == ["direct", "direct"]
    assert list(df["example_id"]) == ["chain_sum-0", "chain_sum-1"]


def test_bad_settings_and_tables_fail_clearly(model_dir):
    with pytest.raises(ValueError, match="evaluation.modes"):
        evaluate.EvalSettings.from_config({"modes": ["sideways"]})
    with pytest.raises(ValueError, match="evaluation: unknown key 'models'"):  # the rule's to drop
        evaluate.EvalSettings.from_config({**SETTINGS, "models": []})
    table = task_table()
    table["split"] = "train"
    with pytest.raises(ValueError, match="no test split"):
        evaluate.run(model_dir, table, run="tiny", settings=SETTINGS, threads=1)


def test_choice_tasks_read_from_parquet_show_their_choices(model_dir, tmp_path):
    table = task_table(2).assign(task_type="choice", answer="B")
    table["choices"] = [["yes", "no"]] * len(table)
    tables.write(table, tmp_path / "tasks.parquet", "tasks")
    settings = dict(SETTINGS, modes=["direct"])
    df, _ = evaluate.run(
        model_dir, tables.read(tmp_path / "tasks.parquet", "tasks"), "tiny", settings, 1
    )
    assert df["prompt"].str.contains("\n\\(A\\) yes\n\\(B\\) no\nAnswer:$").all()
    assert (df["answer"] == "B").all()
