"""Generalization study: the config check, plain and FTICL trainsets (no loss on demonstrations),
cell types, the matrix summary with its paired differences and aggregates, the claims, heatmaps,
and the real path: hub presets read from local files, scored by a chat-template model."""

import copy
import json
import re

import numpy as np
import pandas as pd
import pytest
from factories import save_model_dir, task_table, tiny_llama, tiny_tokenizer

from ftlab import configcheck, kshot, label_scoring, prompts, sft, tables, tasks
from ftlab.studies import generalization as study_pkg
from ftlab.studies.generalization import summary, trainset

CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)
SCHEMA = "resources/config.schema.yaml"

# --- the config check -----------------------------------------------------------------------------


def emb(train=50, test=10, **kw):
    return {"source": "embedded", "sizes": {"train": train, "validation": 2, "test": test}, **kw}


BASE_CONFIG = {
    "tasks": {"a1": emb(), "a2": emb(), "b1": emb(), "b2": emb()},
    "models": {"student": {"source": "hf", "name_or_path": "x"}},
    "studies": {
        "generalization": {
            "student": "student",
            "tasks": {
                "a": {"kind": "classification", "domains": ["a1", "a2"]},
                "b": {"kind": "generation", "domains": ["b1", "b2"]},
            },
            "sources": [],
            "variants": ["plain", "fticl"],
            "k": 2,
            "seeds": [0, 1, 2],
            "train_size": 40,
            "eval_settings": ["zero_shot", "k_shot"],
        }
    },
}


def config_with(path, value):
    config = copy.deepcopy(BASE_CONFIG)
    node = config
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return config


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("studies", "generalization", "student"), "nope", r"generalization\.student: unknown model"),
        (("studies", "generalization", "tasks", "a", "domains"), ["a1", "zz"],
         r"tasks\.a\.domains\[1\]: unknown task 'zz'"),
        (("studies", "generalization", "tasks", "b", "domains"), ["b1", "a1"],
         r"tasks\.b\.domains\[1\]: 'a1' is already a domain of task 'a'"),
        (("studies", "generalization", "sources"), ["a1", "c9"],
         r"sources\[1\]: 'c9' is not a domain"),
        (("studies", "generalization", "train_size"), 80, r"train_size: 80 is more than"),
        (("studies", "generalization", "k"), 60, r"tasks\.a1\.sizes\.train: 50, fewer than the k=60"),
        (("studies", "generalization", "tasks", "a", "rouge_tokens"), "characters",
         r"tasks\.a\.rouge_tokens: 'characters' scores generation tasks only"),
        (("tasks", "b2", "sizes", "test"), 0, r"tasks\.b2\.sizes\.test: 0"),
    ],
)  # fmt: skip
def test_the_check_names_the_key_path(path, value, message):
    assert study_pkg.check(copy.deepcopy(BASE_CONFIG)) == []
    problems = study_pkg.check(config_with(path, value))
    assert any(re.search(message, p) for p in problems), problems


def test_the_schema_and_the_check_together_accept_the_base_config():
    config = copy.deepcopy(BASE_CONFIG)
    checks = {"generalization": study_pkg.check}
    assert configcheck.problems(config, SCHEMA, checks) == []
    study = config["studies"]["generalization"]
    assert study["limit"] is None and study["label_eos"] is True  # schema defaults filled in
    bad = config_with(("studies", "generalization", "variants"), ["plain", "icl"])
    assert any("variants" in p for p in configcheck.problems(bad, SCHEMA, checks))


def test_runs_sources_and_cell_types():
    study = BASE_CONFIG["studies"]["generalization"]
    assert study_pkg.sources(study) == ["a1", "b1"]  # the first domain of each task
    assert study_pkg.eval_tasks(study) == ["a1", "a2", "b1", "b2"]
    assert study_pkg.run_ids(study)[:4] == [
        "generalization/plain/a1/seed0", "generalization/plain/a1/seed1",
        "generalization/plain/a1/seed2", "generalization/fticl/a1/seed0",
    ]  # fmt: skip
    assert len(study_pkg.run_ids(study)) == 2 * 2 * 3
    types = [study_pkg.cell_type(study, "a1", t) for t in study_pkg.eval_tasks(study)]
    assert types == ["in_domain", "cross_domain", "cross_task", "cross_task"]


# --- trainsets ------------------------------------------------------------------------------------


def pets_table(n_train=12, n_test=4):
    rows = [
        {"example_id": f"{sp}{i}", "task": "pets", "split": sp, "task_type": "classification",
         "question": f"Is pet number {i} ({sp}) a cat?", "answer": ["Yes", "No"][i % 2]}
        for sp, n in (("train", n_train), ("test", n_test)) for i in range(n)
    ]  # fmt: skip
    return task_table(rows)


def test_plain_and_fticl_train_the_same_examples_and_targets():
    table = pets_table()
    plain = trainset.build(table, "plain", size=8, seed=3)
    fticl = trainset.build(table, "fticl", k=2, size=8, seed=3)
    tables.to_arrow(plain, "trainset")
    assert list(plain["example_id"]) == list(fticl["example_id"]) and len(plain) == 8
    assert list(plain["completion"]) == list(fticl["completion"])
    assert all(c in (" Yes", " No") for c in plain["completion"])
    questions = dict(zip(table["example_id"], table["question"], strict=True))
    for eid, p, f in zip(plain["example_id"], plain["prompt"], fticl["prompt"], strict=True):
        assert p == prompts.direct_prompt(questions[eid])
        blocks = f.split(kshot.DEMO_SEPARATOR)
        assert len(blocks) == 3 and blocks[-1] == p  # two demonstrations, then the question
        for block in blocks[:-1]:
            demo_q = block.split("\n")[0].removeprefix("Question: ")
            assert demo_q != questions[eid]  # never the question itself
            assert demo_q in set(questions[e] for e in plain["example_id"])  # from the trainset
    again = trainset.build(table, "fticl", k=2, size=8, seed=3)
    assert again.equals(fticl)  # seeded


def test_fticl_demonstrations_carry_no_loss(tmp_path):
    """The shared trainer's labels are -100 over the whole prompt, demonstrations included, and
    equal the completion and EOS after it; with a chat template the prompt is rendered here and
    the trainer keeps it as it is."""
    for chat in (False, True):
        tok = tiny_tokenizer()
        if chat:
            tok.chat_template = CHAT_TEMPLATE
        rows = trainset.build(pets_table(), "fticl", k=2, size=8, seed=0, tokenizer=tok)
        if chat:
            assert rows["prompt"].str.startswith("<|system|>").all()
            assert all(p.count("<|assistant|>") == 3 for p in rows["prompt"])  # 2 demos + the turn
        model = tiny_llama(tok, layers=1, heads=2, max_positions=1024)
        settings = sft.Settings.from_config(
            {"batch_size": 8, "max_steps": 1, "bf16": False, "max_seq_len": 1024}
        )
        trainer = sft.trainer(model, tok, sft.read_trainset(rows), settings, 0, "cpu",
                              tmp_path / f"work{chat}")  # fmt: skip
        batch = next(iter(trainer.get_train_dataloader()))
        by_prompt = {tuple(tok(p)["input_ids"]): tok(p + c)["input_ids"]
                     for p, c in zip(rows["prompt"], rows["completion"], strict=True)}  # fmt: skip
        seen = 0
        for ids, labels in zip(batch["input_ids"].tolist(), batch["labels"].tolist(), strict=True):
            prompt = next(p for p in by_prompt if tuple(ids[: len(p)]) == p)
            full = by_prompt[prompt] + [tok.eos_token_id]
            assert labels[: len(prompt)] == [-100] * len(prompt)  # demonstrations and question
            assert labels[len(prompt) : len(full)] == full[len(prompt) :]  # answer + EOS only
            assert set(labels[len(full) :]) <= {-100}
            masked = tok.decode(ids[: len(prompt)])
            assert masked in set(rows["prompt"])  # the whole FTICL prompt, demonstrations in it
            assert len(re.findall(r"Answer: (?:Yes|No)\n", masked)) == 2  # the demos' answers
            seen += 1
        assert seen == 8


# --- the summary ----------------------------------------------------------------------------------

STUDY = {
    "tasks": {
        "syl": {"kind": "classification", "domains": ["syl_a", "syl_b"]},
        "spell": {
            "kind": "generation",
            "domains": ["spell_a", "spell_b"],
            "rouge_tokens": "characters",
        },
    },  # fmt: skip
    "sources": [],
    "variants": ["plain", "fticl"],
    "eval_settings": ["zero_shot", "k_shot"],
}
N = 60


def frame(run, task, setting, kind, values, answers=None):
    n = len(values)
    answers = answers or [f"w{i}" if kind == "generation" else ["Yes", "No"][i % 2]
                          for i in range(n)]  # fmt: skip
    values = np.asarray(values, dtype=float)
    return pd.DataFrame({
        "example_id": [f"{task}-{i}" for i in range(n)], "task": task, "run": run,
        "setting": setting, "shots": 0 if setting == "zero_shot" else 2, "kind": kind,
        "prompt": "", "prediction": "", "answer": answers,
        "correct": values > 0.5 if kind == "classification" else values == 1.0,
        "rouge_l": np.nan if kind == "classification" else values,
        "score": values, "labels": [[]] * n, "label_logprobs": [[]] * n,
        "demo_ids": [[]] * n, "prompt_tokens": 1,
    }, columns=label_scoring.SCHEMA.names)  # fmt: skip


def draws(p, n, seed):
    u = np.random.default_rng(99).random(n)  # a shared difficulty per question: arms correlate
    noise = np.random.default_rng(seed).random(n) * 0.1
    return ((u + noise) / 1.1 < p).astype(float)


def matrix(rates, seeds=3):
    """rates: (arm, eval task) -> success rate ("base" or "variant/source"); default 0.5."""
    kinds = {"syl_a": "classification", "syl_b": "classification",
             "spell_a": "generation", "spell_b": "generation"}  # fmt: skip
    frames = []
    arms = ["base"] + [f"{v}/{s}" for s in ("syl_a", "spell_a") for v in ("plain", "fticl")]
    for a_i, arm in enumerate(arms):
        for task, kind in kinds.items():
            for setting in STUDY["eval_settings"]:
                for seed in [None] if arm == "base" else range(seeds):
                    p = rates.get((arm, task), 0.5)
                    values = draws(p, N, 7 * a_i + (seed or 0) + len(setting))
                    if arm == "base":
                        run = "student"
                    else:
                        variant, source = arm.split("/")
                        run = f"generalization/{variant}/{source}/seed{seed}"
                    frames.append(frame(run, task, setting, kind, values))
    return frames


PAPER_LIKE = {
    ("base", "syl_b"): 0.55,
    ("plain/syl_a", "syl_b"): 0.80,  # classification transfers to the other domain
    ("fticl/syl_a", "syl_b"): 0.80,
    ("plain/spell_a", "spell_b"): 0.20,  # generation fine-tuning transfers negatively...
    ("fticl/spell_a", "spell_b"): 0.60,  # ... less so with FTICL
    ("base", "spell_b"): 0.40,
}


def test_matrix_cells_and_aggregates(tmp_path):
    table = summary.summarize(matrix(PAPER_LIKE), "student", STUDY, resamples=300, seed=0)
    tables.write(table, tmp_path / "g.parquet", "generalization")
    cells = table[table["level"] == "cell"]
    # 2 sources x 2 variants x (2 classification x 1 metric + 2 generation x 2 metrics) x 2 settings
    assert len(cells) == 2 * 2 * (2 + 4) * 2
    one = cells[(cells.variant == "plain") & (cells.source == "syl_a") & (cells.eval_task == "syl_b")
                & (cells.setting == "zero_shot")].iloc[0]  # fmt: skip
    assert one.cell_type == "cross_domain" and one.metric == "accuracy" and one.seeds == 3
    assert one.examples == N and one.vs_base == pytest.approx(one.score - one.base_score)
    assert one.vs_base_low > 0  # the interval says it improved
    assert one.chance == pytest.approx(0.5) and np.isnan(one.fticl_vs_plain)  # plain row
    fticl = cells[(cells.variant == "fticl") & (cells.source == "spell_a")
                  & (cells.eval_task == "spell_b") & (cells.metric == "rouge_l")]  # fmt: skip
    assert (fticl.fticl_low > 0).all()
    kinds = cells.set_index(["source", "eval_task"])["cell_type"].to_dict()
    assert kinds[("syl_a", "syl_a")] == "in_domain" and kinds[("syl_a", "spell_b")] == "cross_task"
    agg = table[table["level"] == "aggregate"]
    row = agg[(agg.source_kind == "classification") & (agg.cell_type == "cross_domain")
              & (agg.variant == "plain") & (agg.setting == "zero_shot")].iloc[0]  # fmt: skip
    assert row.examples == N and row.vs_base == pytest.approx(one.vs_base)  # one cell pooled
    gen = agg[(agg.source_kind == "generation") & (agg.cell_type == "cross_task")
              & (agg.metric == "accuracy") & (agg.variant == "plain")
              & (agg.setting == "k_shot")].iloc[0]  # fmt: skip
    assert gen.examples == 2 * N  # both classification eval sets side by side
    assert set(table["base_above_chance"].dropna().unique()) <= {True, False}


def by_key(rows):
    return {(r["claim"], r["task"]): r for r in rows}


def test_claims_follow_the_paired_intervals():
    rows = summary.claim_rows(matrix(PAPER_LIKE), "student", STUDY, resamples=500, seed=0)
    got = by_key(rows)
    assert set(got) == {
        ("classification_transfers", "syl_a (zero_shot)"),
        ("classification_transfers", "syl_a (k_shot)"),
        ("fticl_helps_generation", "spell_a (zero_shot)"),
        ("fticl_helps_generation", "spell_a (k_shot)"),
    }
    for r in rows:
        assert r["verdict"] == "supported", r
        assert r["p_holm"] >= r["p_value"] and r["n"] == 3 * N and r["n_seeds"] == 3
    pd.DataFrame(rows).pipe(tables.to_arrow, "claims")
    reversed_ = {**PAPER_LIKE, ("plain/syl_a", "syl_b"): 0.2, ("fticl/spell_a", "spell_b"): 0.1}
    got = by_key(summary.claim_rows(matrix(reversed_), "student", STUDY, resamples=500, seed=0))
    assert got[("classification_transfers", "syl_a (zero_shot)")]["verdict"] == "contradicted"
    assert got[("fticl_helps_generation", "spell_a (k_shot)")]["verdict"] == "contradicted"
    null = by_key(summary.claim_rows(matrix({}), "student", STUDY, resamples=500, seed=0))
    assert null[("classification_transfers", "syl_a (zero_shot)")]["verdict"] == "inconclusive"


def test_claims_without_their_cells_are_not_tested():
    one_domain = copy.deepcopy(STUDY)
    one_domain["tasks"]["syl"]["domains"] = ["syl_a"]
    one_domain["tasks"]["spell"]["domains"] = ["spell_a"]
    frames = [f for f in matrix(PAPER_LIKE) if f["task"].iloc[0] in ("syl_a", "spell_a")]
    got = by_key(summary.claim_rows(frames, "student", one_domain, resamples=200, seed=0))
    assert got[("classification_transfers", "syl_a (zero_shot)")]["verdict"] == "not_tested"
    assert "no other domain" in got[("classification_transfers", "syl_a (zero_shot)")]["reason"]
    assert got[("fticl_helps_generation", "spell_a (k_shot)")]["verdict"] == "not_tested"


def test_arms_scored_on_other_questions_are_rejected():
    frames = matrix({})
    frames[5] = frames[5].assign(example_id=[f"other-{i}" for i in range(N)])
    with pytest.raises(ValueError, match="other test questions"):
        summary.summarize(frames, "student", STUDY, resamples=100)
    with pytest.raises(ValueError, match="neither the student"):
        summary.arm_of("distillation/label_only/x/seed0", "student")


def test_heatmaps_are_written(tmp_path):
    frames = matrix(PAPER_LIKE)
    table = summary.summarize(frames, "student", STUDY, resamples=200, seed=0)
    rows = summary.claim_rows(frames, "student", STUDY, resamples=200, seed=0)
    for setting in STUDY["eval_settings"]:
        path = tmp_path / f"{setting}.png"
        summary.heatmap(table, STUDY, setting, str(path), rows)
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10000


# --- the real path: presets on local files --------------------------------------------------------

REVIEWS = {
    "imdb": ("text", ["a wonderful film, loved it", "dull plot and bad acting", "great cast",
                      "boring, I left early", "moving and funny", "a waste of time",
                      "brilliant direction", "awful script", "superb", "terrible"]),
    "yelp_polarity": ("text", ["tasty food, friendly staff", "cold soup and rude waiters",
                               "great service", "never again", "lovely place", "dirty tables",
                               "fresh and quick", "overpriced and slow", "delicious", "bland"]),
}  # fmt: skip


def write_jsonl(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return str(path)


def test_the_study_over_presets_read_from_local_files(tmp_path):
    """imdb and yelp_polarity (sentiment, two review domains) and xsum (summarisation) presets, as
    local files with the hub's columns; a chat-template model; trainsets, scores, summary, claims."""
    specs = {}
    for name, (column, texts) in REVIEWS.items():
        records = [{column: t, "label": 1 - i % 2} for i, t in enumerate(texts * 3)]
        records = [{**r, column: f"{r[column]} ({i})"} for i, r in enumerate(records)]
        path = write_jsonl(tmp_path / f"{name}.jsonl", records)
        specs[name] = {"preset": name, "source": "file", "path": path,
                       "sizes": {"train": 20, "validation": 2, "test": 8}}  # fmt: skip
    docs = [{"id": str(i), "document": f"the council met on day {i} and agreed a plan",
             "summary": f"council agrees plan on day {i}"} for i in range(30)]  # fmt: skip
    specs["xsum"] = {"preset": "xsum", "source": "file",
                     "path": write_jsonl(tmp_path / "xsum.jsonl", docs),
                     "sizes": {"train": 20, "validation": 2, "test": 8}}  # fmt: skip
    config = {
        "tasks": copy.deepcopy(specs),
        "models": {"student": {"source": "hf", "name_or_path": "x"}},
        "studies": {"generalization": {
            "student": "student",
            "tasks": {"sentiment": {"kind": "classification", "domains": ["imdb", "yelp_polarity"]},
                      "summary": {"kind": "generation", "domains": ["xsum"]}},
            "seeds": [0], "train_size": 10, "k": 2, "limit": 8,
        }},
    }  # fmt: skip
    assert configcheck.problems(config, SCHEMA, {"generalization": study_pkg.check}) == []
    study = config["studies"]["generalization"]
    tabs = {name: tasks.prepare(name, spec)[0] for name, spec in specs.items()}
    assert set(label_scoring.label_set(tabs["imdb"])) == {"negative", "positive"}  # answer_labels
    tok = tiny_tokenizer()
    tok.chat_template = CHAT_TEMPLATE
    model_dir = save_model_dir(
        tiny_llama(tok, seed=11, max_positions=2048), tok, tmp_path / "student"
    )
    rows = trainset.build(tabs["imdb"], "fticl", k=2, size=10, seed=0,
                          tokenizer=kshot.load_tokenizer(model_dir))  # fmt: skip
    assert rows["prompt"].str.startswith("<|system|>").all() and len(rows) == 10
    frames = []
    for run_i, run in enumerate(["student", *study_pkg.run_ids(study)]):
        model = tiny_llama(tok, seed=11 + run_i, max_positions=2048)  # stand-ins for the runs
        for name, table in tabs.items():
            kind = "generation" if name == "xsum" else "classification"
            s = label_scoring.Settings.from_config(
                {"kind": kind, "k": 2, "limit": 8, "max_new_tokens": 6}
            )
            frames.append(label_scoring.score(model, tok, table, run, s))
    got = frames[0]
    assert got["prompt"].str.startswith("<|system|>").all()
    assert set(got["prediction"]) <= {"negative", "positive"}
    table = summary.summarize(frames, "student", study, resamples=200, seed=0)
    tables.to_arrow(table, "generalization")
    assert set(table["eval_task"]) == {"imdb", "yelp_polarity", "xsum", "*"}
    claims_ = summary.claim_rows(frames, "student", study, resamples=200, seed=0)
    assert {r["verdict"] for r in claims_} <= {"not_tested", "inconclusive", "supported",
                                               "contradicted"}  # fmt: skip
    # 8 test questions: too few for a verdict, said as much
    assert all(r["verdict"] == "not_tested" for r in claims_ if r["claim"] ==
               "classification_transfers")  # fmt: skip


def test_an_fticl_example_longer_than_the_fine_tuning_is_an_error():
    with pytest.raises(ValueError, match=r"takes \d+ tokens .* max_seq_len 20"):
        trainset.build(pets_table(), "fticl", k=2, size=8, tokenizer=tiny_tokenizer(),
                       max_seq_len=20)  # fmt: skip
    rows = trainset.build(pets_table(), "fticl", k=2, size=8, tokenizer=tiny_tokenizer(),
                          max_seq_len=4096)  # fmt: skip
    assert len(rows) == 8
