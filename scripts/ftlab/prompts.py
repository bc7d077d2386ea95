"""The text format every stage shares: how a question, a rationale and an answer are laid out.

Embedded (plain) format, one example:

    Question: <question>
    (A) <choice>            <- only for choice tasks
    Reasoning: <rationale>
    Answer: <answer>

* direct prompt   = question block + "Answer:"      completion = " <answer>"
* CoT prompt      = question block + "Reasoning:"   completion = " <rationale>\\nAnswer: <answer>"
* CoT-after       = direct prompt                   completion = " <answer>\\nReasoning: <rationale>"

Every completion ends with the tokenizer's EOS token (added by the trainer/tokenizer, not here).
`ANSWER_CUE` is what early answering and the other faithfulness tests append to force an answer.
"""

from __future__ import annotations

import re

QUESTION = "Question:"
REASONING = "Reasoning:"
ANSWER = "Answer:"
ANSWER_CUE = "\n" + ANSWER
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def question_block(question: str, choices: list[str] | None = None) -> str:
    text = f"{QUESTION} {question.strip()}\n"
    for letter, choice in zip(LETTERS, choices or [], strict=False):
        text += f"({letter}) {choice}\n"
    return text


def direct_prompt(question: str, choices: list[str] | None = None) -> str:
    return question_block(question, choices) + ANSWER


def cot_prompt(question: str, choices: list[str] | None = None) -> str:
    return question_block(question, choices) + REASONING


def direct_completion(answer: str) -> str:
    return f" {answer}"


def cot_completion(rationale: str, answer: str) -> str:
    return f" {rationale.strip()}\n{ANSWER} {answer}"


def cot_after_completion(rationale: str, answer: str) -> str:
    return f" {answer}\n{REASONING} {rationale.strip()}"


SYSTEM = (
    "Answer the question. When asked for reasoning, write short steps, one per line, "
    f"then the final answer on a line starting with '{ANSWER}'."
)


def render(tokenizer, text: str) -> str:
    """The plain-format `text` as the model should see it.

    Without a chat template (embedded models): unchanged. With one (instruct models), the question
    block becomes the user turn and everything after it ("Reasoning: ..." / "Answer: ...") the
    start of the assistant turn, so prompts, completions, answer cues and parsing stay the same
    text in both worlds.
    """
    if not getattr(tokenizer, "chat_template", None) or not text.startswith(QUESTION):
        return text
    cut = _assistant_start(text)
    messages = [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": text[:cut].strip()},
    ]
    head = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return head + text[cut:].lstrip("\n")


def _assistant_start(text: str) -> int:
    """Index of the first line that starts the assistant's part (Reasoning:/Answer:)."""
    starts = [m.start() + 1 for m in re.finditer(rf"\n(?:{REASONING}|{ANSWER})", text)]
    return starts[0] if starts else len(text)


_ANSWER_LINE = re.compile(re.escape(ANSWER) + r"[ \t]*([^\n]*)")


def split_direct(generation: str) -> str:
    """The answer of a direct generation: its first line."""
    return generation.strip().split("\n", 1)[0].strip()


def split_cot(generation: str) -> tuple[str, str | None]:
    """(rationale, raw answer or None) of a CoT generation ("... \\nAnswer: x")."""
    m = _ANSWER_LINE.search(generation)
    if not m:
        return generation.strip(), None
    return generation[: m.start()].strip(), m.group(1).strip()
