"""The checks, per server kind. Each returns a :class:`Check`; none raises for a wrong answer.

* every kind: the health route (fly.toml's ``[[http_service.checks]] path``, else the kind's usual one);
* OpenAI-compatible (vLLM, SGLang, llama.cpp, LocalAI; TGI too): ``/v1/models`` lists the model the Fly app
  served, and a short streamed chat completion answers (time to first token, tokens/s);
* ollama: ``/api/tags`` lists the model, and ``/api/generate`` streams an answer;
* whisper: the bundled clip (``flymigrate/data/verify_clip.wav``) is transcribed through the first route the
  server has: OpenAI's ``/v1/audio/transcriptions``, whisper-asr-webservice's ``/asr``, Cog's
  ``/predictions``, whisper.cpp's ``/inference``;
* anything else: the health route and the service root.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from .auth import _spec
from .http import Client, ConnectError, Response

PROMPT = "Reply with one short sentence: what is 2 + 2?"
MAX_TOKENS = 16
DEFAULT_HEALTH = {"openai": "/health", "tgi": "/health", "ollama": "/", "whisper": "/", "generic": "/"}


@dataclass
class Check:
    name: str
    passed: bool
    detail: str
    timings: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "passed": self.passed, "detail": self.detail}
        if self.timings:
            out["timings"] = {k: round(v, 4) for k, v in self.timings.items()}
        return out


def _why(r: Response) -> str:
    body = r.text(160)
    return f"{r.status} {r.reason}" + (f": {body}" if body else "")


def _json(r: Response) -> Any:
    try:
        return r.json()
    except ValueError:
        return None


def clip_bytes() -> bytes:
    return resources.files("flymigrate").joinpath("data/verify_clip.wav").read_bytes()


# ---------------------------------------------------------------------------------------- discovery
def probe_kind(c: Client) -> tuple[str, str]:
    """Ask the server what it is: (kind, how it was found)."""
    def get(path: str) -> Response | None:
        try:
            return c.get(path, timeout=30)
        except ConnectError:
            return None

    r = get("/v1/models")
    if r is not None and r.status == 200 and isinstance(_json(r), dict) and isinstance(_json(r).get("data"), list):
        return "openai", "/v1/models answered a model list"
    if r is not None and r.status in (401, 403):
        return "openai", f"/v1/models answered {r.status} (a key is required)"
    r = get("/api/tags")
    if r is not None and r.status == 200 and isinstance(_json(r), dict) and "models" in _json(r):
        return "ollama", "/api/tags answered a model list"
    r = get("/info")
    if r is not None and r.status == 200 and isinstance(_json(r), dict) and "model_id" in _json(r):
        return "tgi", "/info answered a model_id"
    r = get("/openapi.json")
    if r is not None and r.status == 200:
        paths = (_json(r) or {}).get("paths") or {}
        if any(p in paths for p in ("/v1/audio/transcriptions", "/asr", "/inference")) or (
                "/predictions" in paths and b"audio" in r.body):
            return "whisper", "/openapi.json lists a transcription route"
        if "/v1/chat/completions" in paths:
            return "openai", "/openapi.json lists /v1/chat/completions"
    return "generic", "the server answered none of /v1/models, /api/tags, /info"


# ---------------------------------------------------------------------------------------- common
def check_health(c: Client, path: str, target: str, origin: str) -> Check:
    name = f"health {path}"
    try:
        r = c.get(path, timeout=60)
    except ConnectError as exc:
        return Check(name, False, f"no answer: {exc}")
    spec = _spec(target)
    if spec.health_route and path == spec.health_route:
        ok = r.status == spec.health_ready_status  # RunPod LB: 204 means still initialising
    else:
        ok = 200 <= r.status < (400 if path == "/" else 300)  # a root that redirects (to /docs) is alive
    why = f"{r.status} {r.reason}" + (f" ({origin})" if origin else "")
    if not ok:
        why = _why(r) + (f" ({origin})" if origin else "")
        if r.status == 404:
            why += "; the server has no such route: is this the migrated app, and is the path right?"
    return Check(name, ok, why, {"ms": r.elapsed_s * 1000})


def check_root(c: Client) -> Check:
    try:
        r = c.get("/", timeout=60)
    except ConnectError as exc:
        return Check("service root /", False, f"no answer: {exc}")
    return Check("service root /", r.status < 500, _why(r), {"ms": r.elapsed_s * 1000})


def model_matches(expected: str, listed: str) -> bool:
    e, l_ = expected.strip().lower(), listed.strip().lower()
    if e == l_:
        return True
    if ":" not in e and l_ == e + ":latest":  # ollama's implicit tag
        return True
    if "/" in e and "models--" + e.replace("/", "--") in l_:  # served from a Hugging Face cache path
        return True
    base = e.rsplit("/", 1)[-1]
    return l_.rsplit("/", 1)[-1] == base or l_.rstrip("/").endswith("/" + base)


# ---------------------------------------------------------------------------------------- OpenAI-compatible
def check_models(c: Client, expected: str | None) -> tuple[Check, str | None]:
    name = "models listed (/v1/models)"
    try:
        r = c.get("/v1/models", timeout=60)
    except ConnectError as exc:
        return Check(name, False, f"no answer: {exc}"), None
    if r.status != 200:
        hint = "; the app wants its own key: give it with --secrets or VLLM_API_KEY" if r.status in (401, 403) else ""
        return Check(name, False, _why(r) + hint), None
    data = _json(r)
    ids = [str(m.get("id")) for m in (data or {}).get("data") or [] if isinstance(m, dict) and m.get("id")] \
        if isinstance(data, dict) else []
    if not ids:
        return Check(name, False, "the server listed no model"), None
    if expected is None:
        return Check(name, True, f"lists {', '.join(ids[:3])} (the app does not say which model it served)"), ids[0]
    hit = next((i for i in ids if model_matches(expected, i)), None)
    if hit is None:
        return Check(name, False, f"{expected} (what the Fly app served) is not listed; the server lists "
                     f"{', '.join(ids[:5])}"), ids[0]
    return Check(name, True, f"lists {hit}"), hit


def _usage_tokens(events: list[Any]) -> int | None:
    for ev in reversed(events):
        if isinstance(ev, dict) and isinstance(ev.get("usage"), dict):
            n = ev["usage"].get("completion_tokens")
            if isinstance(n, int):
                return n
        if isinstance(ev, dict) and isinstance(ev.get("eval_count"), int):  # ollama
            return ev["eval_count"]
    return None


def _stream_check(name: str, c: Client, path: str, payload: dict[str, Any], count_chunk) -> Check:
    try:
        s = c.stream_json(path, payload, timeout=300)
    except ConnectError as exc:
        return Check(name, False, f"no answer: {exc}")
    if not 200 <= s.status < 300:
        return Check(name, False, f"{s.status} {s.reason}" + (f": {s.body_head}" if s.body_head else ""))
    if s.error:
        return Check(name, False, f"the stream broke after {len(s.events)} events: {s.error}")
    chunks = sum(1 for ev in s.events if count_chunk(ev))
    if not chunks or s.first_event_s is None:
        return Check(name, False, f"{s.status}, but no token came back in {len(s.events)} events")
    if not s.done:
        return Check(name, False, f"{chunks} tokens, but the stream ended without its end marker")
    tokens = _usage_tokens(s.events) or chunks
    gen_s = s.elapsed_s - s.first_event_s
    tps = (tokens - 1) / gen_s if tokens > 1 and gen_s > 0 else None
    timings = {"ttft_ms": s.first_event_s * 1000, "total_ms": s.elapsed_s * 1000, "tokens": float(tokens)}
    if tps is not None:
        timings["tokens_per_s"] = tps
    return Check(name, True, f"{tokens} tokens, first after {s.first_event_s * 1000:.0f} ms"
                 + (f", {tps:.1f} tokens/s" if tps is not None else ""), timings)


def _chat_chunk(ev: Any) -> bool:
    return isinstance(ev, dict) and any(
        isinstance(ch, dict) and ((ch.get("delta") or {}).get("content") or ch.get("text"))
        for ch in ev.get("choices") or ())


def chat_payload(model: str, *, stream: bool, max_tokens: int = MAX_TOKENS) -> dict[str, Any]:
    p: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": PROMPT}],
                         "max_tokens": max_tokens, "temperature": 0, "stream": stream}
    if stream:
        p["stream_options"] = {"include_usage": True}
    return p


def check_chat(c: Client, model: str) -> Check:
    return _stream_check("chat completion (streamed)", c, "/v1/chat/completions", chat_payload(model, stream=True),
                         _chat_chunk)


def completion_payload(model: str, *, stream: bool, max_tokens: int = MAX_TOKENS) -> dict[str, Any]:
    p: dict[str, Any] = {"model": model, "prompt": PROMPT, "max_tokens": max_tokens, "temperature": 0,
                         "stream": stream}
    if stream:
        p["stream_options"] = {"include_usage": True}
    return p


def check_completion(c: Client, model: str, why_not_chat: str) -> Check:
    """For a base model without a chat template (vLLM answers chat with 400): the plain completions route."""
    chk = _stream_check("completion (streamed, /v1/completions)", c, "/v1/completions",
                        completion_payload(model, stream=True), _chat_chunk)
    chk.detail += f"; chat completion answered {why_not_chat}"
    return chk


def check_tgi_info(c: Client, expected: str | None) -> tuple[Check, str | None]:
    name = "model served (/info)"
    try:
        r = c.get("/info", timeout=60)
    except ConnectError as exc:
        return Check(name, False, f"no answer: {exc}"), None
    data = _json(r) if r.status == 200 else None
    mid = data.get("model_id") if isinstance(data, dict) else None
    if not mid:
        return Check(name, False, _why(r)), None
    if expected and not model_matches(expected, str(mid)):
        return Check(name, False, f"serves {mid}, not {expected} (what the Fly app served)"), str(mid)
    return Check(name, True, f"serves {mid}"), str(mid)


# ---------------------------------------------------------------------------------------- ollama
def check_tags(c: Client, expected: str | None) -> tuple[Check, str | None]:
    name = "models listed (/api/tags)"
    try:
        r = c.get("/api/tags", timeout=60)
    except ConnectError as exc:
        return Check(name, False, f"no answer: {exc}"), None
    if r.status != 200:
        return Check(name, False, _why(r)), None
    data = _json(r)
    names = [str(m.get("name") or m.get("model")) for m in (data or {}).get("models") or [] if isinstance(m, dict)] \
        if isinstance(data, dict) else []
    if not names:
        return Check(name, False, "no model is pulled: run `ollama pull MODEL` into the volume (or copy the Fly "
                     "volume's models)"), None
    if expected is None:
        return Check(name, True, f"lists {', '.join(names[:3])} (the app does not say which model it served)"), names[0]
    hit = next((n for n in names if model_matches(expected, n)), None)
    if hit is None:
        return Check(name, False, f"{expected} is not pulled; the server has {', '.join(names[:5])}"), names[0]
    return Check(name, True, f"lists {hit}"), hit


def generate_payload(model: str, *, stream: bool, num_predict: int = MAX_TOKENS) -> dict[str, Any]:
    return {"model": model, "prompt": PROMPT, "stream": stream, "options": {"num_predict": num_predict,
                                                                          "temperature": 0}}


def check_generate(c: Client, model: str) -> Check:
    return _stream_check("generate (streamed, /api/generate)", c, "/api/generate", generate_payload(model, stream=True),
                         lambda ev: isinstance(ev, dict) and bool(ev.get("response")))


# ---------------------------------------------------------------------------------------- whisper
def _multipart(fields: dict[str, str], file_field: str, filename: str, data: bytes) -> tuple[bytes, str]:
    boundary = "flymigrate" + uuid.uuid4().hex
    parts = []
    for k, v in fields.items():
        parts.append(f"--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n".encode())
    parts.append(f"--{boundary}\r\nContent-Disposition: form-data; name=\"{file_field}\"; filename=\"{filename}\"\r\n"
                 "Content-Type: audio/wav\r\n\r\n".encode() + data + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def transcription_routes(model: str | None) -> list[tuple[str, str, bytes, str]]:
    """(label, path, body, content type) for each transcription API verify knows, most common first."""
    clip = clip_bytes()
    out = []
    body, ct = _multipart({"model": model or "whisper-1", "response_format": "json"}, "file", "clip.wav", clip)
    out.append(("OpenAI /v1/audio/transcriptions", "/v1/audio/transcriptions", body, ct))
    body, ct = _multipart({}, "audio_file", "clip.wav", clip)
    out.append(("whisper-asr-webservice /asr", "/asr?output=json", body, ct))
    cog = json.dumps({"input": {"audio": "data:audio/wav;base64," + base64.b64encode(clip).decode()}}).encode()
    out.append(("Cog /predictions", "/predictions", cog, "application/json"))
    body, ct = _multipart({"response_format": "json"}, "file", "clip.wav", clip)
    out.append(("whisper.cpp /inference", "/inference", body, ct))
    return out


def _transcript(r: Response) -> str | None:
    data = _json(r)
    if isinstance(data, dict):
        if isinstance(data.get("text"), str):
            return data["text"]
        out = data.get("output")
        if isinstance(out, dict):
            for k in ("transcription", "text"):
                if isinstance(out.get(k), str):
                    return out[k]
        if isinstance(out, str):
            return out
        return None
    ct = r.headers.get("content-type", "")
    return r.body.decode("utf-8", "replace") if ct.startswith("text/plain") else None


def check_transcribe(c: Client, model: str | None) -> tuple[Check, tuple[str, str, bytes, str] | None]:
    name = "transcribe the bundled clip"
    tried = []
    for route in transcription_routes(model):
        label, path, body, ct = route
        try:
            r = c.request("POST", path, body=body, headers={"Content-Type": ct}, timeout=300)
        except ConnectError as exc:
            return Check(name, False, f"{label}: no answer: {exc}"), None
        if r.status in (404, 405):
            tried.append(f"{path.split('?')[0]} {r.status}")
            continue
        if not 200 <= r.status < 300:
            return Check(name, False, f"{label}: {_why(r)}"), None
        text = _transcript(r)
        if text is None:
            return Check(name, False, f"{label}: {r.status}, but no transcript in the answer: {r.text(120)}"), None
        shown = " ".join(text.split())[:60]
        return Check(name, True, f"{label}: {r.status}, transcript {shown!r} in {r.elapsed_s * 1000:.0f} ms",
                     {"ms": r.elapsed_s * 1000}), route
    return Check(name, False, "no transcription route answered (" + ", ".join(tried) + ")"), None


# ---------------------------------------------------------------------------------------- per kind
Warm = Callable[[Client], "str | None"]  # one warm request: None when it answered well, else why not


@dataclass
class Functional:
    """What a server kind's checks found, and the request the warm-latency phase repeats."""

    checks: list[Check]
    model: str | None = None
    warm: Warm | None = None
    warm_what: str = ""


def warm_post(path: str, payload: dict[str, Any], must_have: bytes) -> Warm:
    def req(cl: Client) -> str | None:
        r = cl.post_json(path, payload)
        return None if r.status == 200 and must_have in r.body else f"{r.status} {r.reason}"
    return req


def warm_get(path: str) -> Warm:
    def req(cl: Client) -> str | None:
        r = cl.get(path)
        return None if 200 <= r.status < 300 else f"{r.status} {r.reason}"
    return req


def functional_checks(c: Client, kind: str, model: str | None) -> Functional:
    """The checks that prove this kind of server serves: list the model, then generate or transcribe."""
    if kind in ("openai", "tgi"):
        if kind == "tgi":
            chk, served = check_tgi_info(c, model)
            name = "tgi" if served else None  # TGI's Messages API takes any model name
        else:
            chk, served = check_models(c, model)
            name = served
        out = Functional([chk], served)
        if name is None:
            return out
        gen = check_chat(c, name)
        warm = Functional([], None, warm_post("/v1/chat/completions", chat_payload(name, stream=False, max_tokens=8),
                                              b"choices"), "chat completion (8 tokens)")
        if not gen.passed and gen.detail.startswith(("400", "404", "422")):
            # a base model without a chat template: vLLM answers chat with 400; try plain completions
            comp = check_completion(c, name, gen.detail[:120])
            if comp.passed:
                gen = comp
                warm = Functional([], None, warm_post("/v1/completions", completion_payload(name, stream=False,
                                                                                            max_tokens=8),
                                                      b"choices"), "completion (8 tokens)")
        out.checks.append(gen)
        if gen.passed:
            out.warm, out.warm_what = warm.warm, warm.warm_what
        return out
    if kind == "ollama":
        chk, served = check_tags(c, model)
        out = Functional([chk], served)
        if served:
            gen = check_generate(c, served)
            out.checks.append(gen)
            if gen.passed:
                out.warm = warm_post("/api/generate", generate_payload(served, stream=False, num_predict=8),
                                     b"response")
                out.warm_what = "generate (8 tokens)"
        return out
    if kind == "whisper":
        if model is None:  # an OpenAI-style server (speaches, vLLM) wants a model id it serves, not "whisper-1"
            try:
                r = c.get("/v1/models", timeout=30)
                data = _json(r) if r.status == 200 else None
                ids = [m.get("id") for m in (data or {}).get("data") or [] if isinstance(m, dict)] \
                    if isinstance(data, dict) else []
                model = next((i for i in ids if isinstance(i, str) and "whisper" in i.lower()), None)
            except ConnectError:
                pass
        chk, route = check_transcribe(c, model)
        out = Functional([chk], model)
        if route is not None:
            label, path, body, ct = route

            def req(cl: Client) -> str | None:
                r = cl.request("POST", path, body=body, headers={"Content-Type": ct})
                return None if 200 <= r.status < 300 else f"{r.status} {r.reason}"
            out.warm, out.warm_what = req, f"transcription ({label})"
        return out
    return Functional([check_root(c)], None)
