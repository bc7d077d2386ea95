"""Fine-tuning speed, side by side on one model and one trainset (CPU by default).

Prints real (non-pad) tokens per second of the training loop for
  ftlab     finetune.train with the run's settings (full fine-tuning),
  packed    a hand-written bf16 torch loop over packed rows (no padding, loss on every token),
  trl       TRL SFTTrainer with its defaults (same batch size, lr, steps),
and the ratios ftlab/packed (target >= 0.8) and ftlab/trl (target >= 3), the step time of
LoRA vs full fine-tuning, and each loop's MFU (6 x params x tokens/s over the matmul peak measured
here, fp32 and bf16, at the same thread count). ftlab and packed run `--repeats` times, interleaved, and keep their best
(the first run in a process pays one-off warm-up). packed/TRL is the ceiling of ftlab/TRL for any
trainer that is no faster than a plain packed loop.

    nice -n 15 .venv/bin/python bench/finetune.py --steps 30
    nice -n 15 .venv/bin/python bench/finetune.py --steps 30 \
        --trainset results/trainsets/distillation/cot_before/leg_counting.parquet \
        --tokenizer results/models/student

By default the trainset is synthetic chain-sum CoT examples of similar lengths (little padding);
`--trainset` takes a pipeline trainset instead, with its real spread of completion lengths.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch
from transformers import LlamaConfig, LlamaForCausalLM

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from ftlab import finetune, prompts, sft, tables, tokenizer  # noqa: E402

# CPU seconds of this process by default: on a shared machine wall time measures the neighbours
CLOCK = time.process_time


def examples(n: int, seed: int = 0) -> pd.DataFrame:
    """Chain-sum questions with a worked rationale: prompt/completion like a CoT trainset."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        terms = [rng.randint(1, 99) for _ in range(rng.randint(2, 5))]
        question = "What is " + " + ".join(map(str, terms)) + "?"
        steps, total = [], 0
        for t in terms:
            steps.append(f"{total} + {t} = {total + t}")
            total += t
        rows.append(
            {
                "example_id": f"e{i}",
                "task": "chain_sum",
                "split": "train",
                "task_type": "numeric",
                "question": question,
                "choices": None,
                "answer": str(total),
                "gold_rationale": ". ".join(steps) + ".",
                "metadata": "{}",
                "prompt": prompts.cot_prompt(question),
                "completion": prompts.cot_completion(". ".join(steps) + ".", str(total)),
            }
        )
    return pd.DataFrame(rows)


def make_model(vocab: int, hidden: int, layers: int, heads: int, seed: int = 0):
    torch.manual_seed(seed)
    cfg = LlamaConfig(
        vocab_size=vocab,
        hidden_size=hidden,
        intermediate_size=hidden * 8 // 3 // 16 * 16,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=heads,
        max_position_embeddings=512,
        tie_word_embeddings=True,
    )
    return LlamaForCausalLM(cfg)


def packed_loop(model, tok, frame, steps, rows, seq_len, lr) -> float:
    """nanoGPT-style: one token stream, `rows` x `seq_len` per step, bf16 autocast, AdamW."""
    ids = []
    for p, c in zip(frame.prompt, frame.completion, strict=True):
        ids += tok(p + c + tok.eos_token)["input_ids"]
    stream = torch.tensor(ids)
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(0)
    model.train()
    start = CLOCK()
    for _ in range(steps):
        offsets = torch.randint(0, len(stream) - seq_len - 1, (rows,), generator=gen)
        x = torch.stack([stream[o : o + seq_len] for o in offsets])
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = model(input_ids=x, labels=x).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
    seconds = CLOCK() - start
    return steps * rows * seq_len / seconds, seconds / steps


def trl_defaults(model, tok, frame, steps, batch_size, lr, work, **overrides):
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    args = SFTConfig(
        output_dir=str(work),
        max_steps=steps,
        per_device_train_batch_size=batch_size,
        learning_rate=lr,
        report_to="none",
        save_strategy="no",
        use_cpu=True,
        disable_tqdm=True,
        **overrides,
    )
    data = Dataset.from_pandas(frame[["prompt", "completion"]], preserve_index=False)
    trainer = SFTTrainer(model=model, args=args, train_dataset=data, processing_class=tok)
    start = CLOCK()
    trainer.train()
    seconds = CLOCK() - start
    tokens = trainer._total_train_tokens  # real tokens (attention-mask sum) seen in training
    return tokens / seconds, seconds / steps


def ftlab_run(model, tok, frame, steps, batch_size, lr, method, work):
    settings = finetune.Settings.from_config(
        {
            "method": method,
            "lr": lr,
            "max_steps": steps,
            "batch_size": batch_size,
            "log_every": 10**9,
        }
    )
    trainer = sft.trainer(model, tok, sft.read_trainset(frame), settings, 0, "cpu", work)
    start = CLOCK()
    trainer.train()
    seconds = CLOCK() - start
    return trainer.train_log.frame().tokens.sum() / seconds, seconds / steps


def matmul_peak(dtype: torch.dtype, size: int = 1024, repeats: int = 8) -> float:
    """Measured FLOP/s of a square matmul at this thread count (the MFU denominator)."""
    a, b = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
    a @ b  # warm-up
    start = CLOCK()
    for _ in range(repeats):
        a @ b
    return 2 * size**3 * repeats / (CLOCK() - start)


def mfu(n_params: int, tokens_per_s: float, peak: float) -> float:
    """Model FLOPs utilisation: 6 N FLOPs per trained token (forward + backward) over the peak."""
    return 6 * n_params * tokens_per_s / peak


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--layers", type=int, default=6)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--vocab", type=int, default=2048)
    ap.add_argument("--examples", type=int, default=2000)
    ap.add_argument("--threads", type=int, default=1, help="1 keeps CPU time a fair measure")
    ap.add_argument("--repeats", type=int, default=2, help="runs of ftlab and packed; best kept")
    ap.add_argument("--wall", action="store_true", help="time with the wall clock, not CPU time")
    ap.add_argument("--skip-trl", action="store_true", help="TRL defaults are slow; skip them")
    ap.add_argument("--trainset", help="a pipeline trainset (prompt, completion) instead")
    ap.add_argument("--tokenizer", help="with --trainset: the directory of its model's tokenizer")
    a = ap.parse_args()
    global CLOCK
    CLOCK = time.perf_counter if a.wall else time.process_time
    torch.set_num_threads(a.threads)
    if a.trainset:
        from transformers import AutoTokenizer

        frame = tables.read(a.trainset, "trainset").head(a.examples).reset_index(drop=True)
        tok = AutoTokenizer.from_pretrained(a.tokenizer)
    else:
        frame = examples(a.examples)
        tok = tokenizer.build([frame], a.vocab)
    lr = 1e-3

    def model():
        return make_model(len(tok), a.hidden, a.layers, a.heads)

    n_params = sum(p.numel() for p in model().parameters())
    lengths = [
        len(tok(p + c)["input_ids"]) + 1
        for p, c in zip(frame.prompt, frame.completion, strict=True)
    ]
    mean_len = sum(lengths) / len(lengths)
    clock = "wall" if a.wall else "CPU"
    print(f"tokens per {clock} second, {a.threads} thread(s), {a.steps} steps each")
    print(f"model {n_params / 1e6:.1f}M params, {len(frame)} examples of {mean_len:.0f} tokens")
    rows = max(1, round(a.batch_size * mean_len / 256))
    with tempfile.TemporaryDirectory() as work:
        # interleaved repeats, best of each: the first run in a process pays one-off warm-up
        ours, full_step, packed = 0.0, float("inf"), 0.0
        for _ in range(a.repeats):
            rate, step = ftlab_run(model(), tok, frame, a.steps, a.batch_size, lr, "full", work)
            ours, full_step = max(ours, rate), min(full_step, step)
            packed = max(packed, packed_loop(model(), tok, frame, a.steps, rows, 256, lr)[0])
        _, lora_step = ftlab_run(model(), tok, frame, a.steps, a.batch_size, lr, "lora", work)
        if not a.skip_trl:
            trl, _ = trl_defaults(model(), tok, frame, a.steps, a.batch_size, lr, work)
            # TRL's packing (bfd): each step one padding-free row of about the same tokens
            trl_bfd, _ = trl_defaults(
                model(), tok, frame, a.steps, 1, lr, work,
                packing=True, max_length=round(a.batch_size * mean_len),
            )  # fmt: skip
    print(f"ftlab full      {ours:8.0f} tok/s   {full_step * 1000:6.0f} ms/step")
    print(f"packed bf16     {packed:8.0f} tok/s   ({rows} x 256 tokens a step)")
    if not a.skip_trl:
        print(f"TRL defaults    {trl:8.0f} tok/s")
        print(f"TRL packing     {trl_bfd:8.0f} tok/s   (packing=True, bfd)")
    print(f"ftlab LoRA      {'':8s}         {lora_step * 1000:6.0f} ms/step")
    print(f"ftlab / packed  {ours / packed:8.2f}   (target >= 0.8)")
    if not a.skip_trl:
        print(
            f"ftlab / TRL     {ours / trl:8.2f}   (target >= 3; vs TRL packing: {ours / trl_bfd:.2f})"
        )
        print(
            f"packed / TRL    {packed / trl:8.2f}   (what a trainer as fast as the packed loop gets)"
        )
    print(f"LoRA / full     {lora_step / full_step:8.2f}   step time")
    peak32, peak16 = matmul_peak(torch.float32), matmul_peak(torch.bfloat16)
    print(f"matmul peak     {peak32 / 1e9:8.1f} GFLOP/s fp32, {peak16 / 1e9:.1f} bf16 "
          f"({a.threads} thread(s), 1024^2)")  # fmt: skip
    for name, rate in [("ftlab full", ours), ("packed bf16", packed)] + (
        [] if a.skip_trl else [("TRL defaults", trl)]
    ):
        print(f"MFU {name:12s} {mfu(n_params, rate, peak32):6.1%} of fp32 peak, "
              f"{mfu(n_params, rate, peak16):6.1%} of bf16 peak")  # fmt: skip


if __name__ == "__main__":
    main()
