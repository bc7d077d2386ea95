"""A teacher behind any OpenAI-compatible chat-completions server (vLLM, TGI, a hosted API).

The model directory holds only `openai.json` (written by `hub.write_openai_pointer` when the model
is built, without contacting the server): where the server is, which model it serves, and the NAME
of the environment variable holding the API key. The key itself is read from the environment at
request time and goes nowhere else: not into openai.json, the fingerprint, provenance, logs or
error messages.

Servers fail in ordinary ways (overload 429s, 5xx, stalls, truncated JSON); each request is retried
with exponential backoff through tenacity, and the fault counts are logged so a run's record says
how rough the ride was. Requests go out concurrently (a thread pool); results keep prompt order.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import logging
import os
import threading
import urllib.error
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import tenacity
from tqdm.auto import tqdm

from ftlab import hub, prompts
from ftlab.teachers import Completion, Decoding

log = logging.getLogger(__name__)

RETRY_STATUSES = {408, 409, 429, 500, 502, 503, 504}


class Retryable(Exception):
    """A failure worth another try; `kind` is what the fault counts call it."""

    def __init__(self, kind: str, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.kind = kind
        self.retry_after = retry_after


class ServerError(RuntimeError):
    """A reply no retry will fix (bad request, wrong key, unknown model), or retries ran out."""


class OpenAITeacher:
    """Chat completions over HTTP; implements `teachers.Teacher`."""

    def __init__(
        self, model_dir: str | Path | None = None, settings: hub.OpenAISettings | None = None
    ):
        if settings is None:
            if model_dir is None:
                raise ValueError("OpenAITeacher needs a model directory or settings")
            settings = hub.read_openai_pointer(model_dir)
        self.settings = settings
        # What decides the outputs: the server, the model it serves and the request's system turn
        # (not timeouts or concurrency, and never the key).
        ident = json.dumps(
            {
                "base_url": settings.base_url,
                "served_model": settings.served_model,
                "system": prompts.SYSTEM,
            }
        )
        self.fingerprint = hashlib.sha256(ident.encode()).hexdigest()
        self.faults: Counter[str] = Counter()  # server faults by kind, over this teacher's life
        self.completed = 0
        self._lock = threading.Lock()

    def complete(self, prompts: list[str], decoding: Decoding) -> list[Completion]:
        prompts = list(prompts)
        before = Counter(self.faults)
        with ThreadPoolExecutor(max_workers=self.settings.concurrency) as pool:
            jobs = pool.map(lambda p: self._complete_one(p, decoding), prompts)
            out = list(tqdm(jobs, total=len(prompts), desc="openai teacher", mininterval=5))
        self.completed += len(out)
        faults = self.faults - before
        log.info(
            "openai teacher %s at %s: %d completions, %d server faults %s; in all %d completions, faults %s",
            self.settings.served_model,
            self.settings.base_url,
            len(out),
            sum(faults.values()),
            dict(sorted(faults.items())),
            self.completed,
            dict(sorted(self.faults.items())),
        )
        return out

    def _count(self, kind: str) -> None:
        with self._lock:
            self.faults[kind] += 1

    def _complete_one(self, prompt: str, decoding: Decoding) -> Completion:
        s = self.settings

        def wait(state: tenacity.RetryCallState) -> float:
            backoff = min(60.0, s.backoff_s * 2 ** (state.attempt_number - 1))
            exc = state.outcome.exception() if state.outcome else None
            after = getattr(exc, "retry_after", None)
            return max(backoff, min(after, 60.0)) if after else backoff

        def before_sleep(state: tenacity.RetryCallState) -> None:
            exc = state.outcome.exception()
            self._count(exc.kind)
            log.warning("attempt %d: %s; retrying", state.attempt_number, exc)

        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(Retryable),
            stop=tenacity.stop_after_attempt(s.max_retries + 1),
            wait=wait,
            before_sleep=before_sleep,
            reraise=True,
        )
        try:
            return retrying(self._request, prompt, decoding)
        except Retryable as e:
            self._count(e.kind)
            raise ServerError(
                f"{s.endpoint}: gave up after {s.max_retries + 1} attempts: {e}"
            ) from None

    def _request(self, prompt: str, decoding: Decoding) -> Completion:
        s = self.settings
        body = {
            "model": s.served_model,
            # The plain-format prompt ("Question: ...\nReasoning:") as the user turn; the system
            # turn asks for the same layout the parsers read (steps, then "Answer: ...").
            "messages": [
                {"role": "system", "content": prompts.SYSTEM},
                {"role": "user", "content": prompt},
            ],
            "max_tokens": decoding.max_new_tokens,
            "temperature": decoding.temperature if decoding.do_sample else 0.0,
            "n": 1,
        }
        if decoding.do_sample:
            body["seed"] = decoding.seed
        headers = {"Content-Type": "application/json"}
        key = os.environ.get(s.api_key_env) if s.api_key_env else None
        if key:
            headers["Authorization"] = f"Bearer {key}"
        request = urllib.request.Request(
            s.endpoint, data=json.dumps(body).encode(), headers=headers, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=s.timeout_s) as response:
                raw = response.read()
        except urllib.error.HTTPError as e:
            if e.code in RETRY_STATUSES or e.code >= 500:
                retry_after = _seconds(e.headers.get("Retry-After"))
                raise Retryable(
                    f"http_{e.code}", f"HTTP {e.code} from {s.endpoint}", retry_after
                ) from None
            hint = f" (is ${s.api_key_env} set?)" if e.code in (401, 403) and s.api_key_env else ""
            raise ServerError(
                f"HTTP {e.code} from {s.endpoint}{hint}: {_snippet(e.read())}"
            ) from None
        except TimeoutError:  # the reply stalled mid-body
            raise Retryable(
                "timeout", f"no reply from {s.endpoint} within {s.timeout_s}s"
            ) from None
        except urllib.error.URLError as e:  # urllib wraps errors before the reply's headers
            if isinstance(e.reason, TimeoutError):
                raise Retryable(
                    "timeout", f"no reply from {s.endpoint} within {s.timeout_s}s"
                ) from None
            raise Retryable("connection", f"cannot reach {s.endpoint}: {e.reason}") from None
        except (ConnectionError, http.client.HTTPException) as e:
            raise Retryable("connection", f"connection to {s.endpoint} broke: {e!r}") from None
        return _parse(raw, s.endpoint)


def _parse(raw: bytes, endpoint: str) -> Completion:
    try:
        reply = json.loads(raw)
        choice = reply["choices"][0]
        text = choice["message"]["content"]
        if not isinstance(text, str):
            raise TypeError(f"content is {type(text).__name__}")
        usage = reply.get("usage") or {}
        return Completion(
            text=text,
            prompt_tokens=int(usage.get("prompt_tokens", 0)),
            completion_tokens=int(usage.get("completion_tokens", 0)),
        )
    except (ValueError, KeyError, IndexError, TypeError) as e:
        raise Retryable(
            "malformed", f"malformed reply from {endpoint} ({e!r}): {_snippet(raw)}"
        ) from None


def _seconds(value: str | None) -> float | None:
    try:
        return float(value) if value else None
    except ValueError:
        return None


def _snippet(raw: bytes, n: int = 200) -> str:
    return raw[:n].decode("utf-8", "replace")
