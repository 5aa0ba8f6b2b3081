"""Property-based tests (hypothesis) over the parsers and the base-URL rewriter. Example counts are modest so
the suite stays fast; FLYMIGRATE_HYPOTHESIS_EXAMPLES raises them for a deeper run."""

from __future__ import annotations

import os
import tomllib

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from flymigrate.errors import ConfigError
from flymigrate.parse.flytoml import load_fly_config
from flymigrate.parse.secrets import parse_secrets
from flymigrate.parse.tomllines import LineIndex
from flymigrate.scan import find_in_text, rewrite_url

N = int(os.environ.get("FLYMIGRATE_HYPOTHESIS_EXAMPLES", "120"))
FAST = settings(max_examples=N, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                        HealthCheck.too_slow])


def apply_rewrite(text: str, app: str, new_base: str) -> str:
    """What `apply` does to a file (and the deployment to an [env] value): the one URL rewriter."""
    from flymigrate.scan import apply_hits

    hits, _ = find_in_text(text, app, "f")
    return apply_hits(text, [h for h in hits if h.kind != "fdaa"], new_base)


# ------------------------------------------------------------------------------------------ URL rewriter
apps = st.from_regex(r"[a-z][a-z0-9]{0,6}(-[a-z0-9]{1,5})?", fullmatch=True)
schemes = st.sampled_from(["", "http://", "https://", "ws://", "HTTPS://"])
ports = st.sampled_from(["", ":80", ":8080", ":11434"])
paths = st.sampled_from(["", "/", "/v1/chat?q=1", "/predict#x", "'", '"', ",", ")", " ", "\n", ";"])
fillers = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)
new_bases = st.sampled_from(["https://ws--flymigrate-{app}-serve.modal.run", "https://abc123.api.runpod.ai",
                             "https://{app}-123.us-central1.run.app/", "http://{app}.example.com:9000"])


def forms(app: str) -> st.SearchStrategy[str]:
    hosts = st.sampled_from([f"{app}.fly.dev", f"{app}.flycast", f"{app}.internal", f"iad.{app}.internal",
                             f"global.{app}.internal", f"top2.nearest.of.{app}.internal",
                             f"{app.upper()}.FLY.DEV", f"worker.process.{app}.internal"])
    return st.builds(lambda s, h, p, t: s + h + p + t, schemes, hosts, ports, paths)


def decoys(app: str) -> st.SearchStrategy[str]:
    return st.sampled_from([f"status.{app}.fly.dev.example.com", f"{app}-admin.fly.dev", f"my-{app}.fly.dev",
                            f"sub.{app}.fly.dev", f"{app}.flycast.example.org", f"{app}.internal.corp.com",
                            f"not{app}.internal", f"{app}.fly.devices.com", f"x.y.z.{app}.internal",
                            f"{app}x.fly.dev", f"{app}_2.flycast", f"{app}.fly.dev-staging.io",
                            f"mail@{app}.fly.dev.evil.com", f"{app}.internal_name"])


@st.composite
def documents(draw: st.DrawFn) -> tuple[str, str, list[str], str]:
    app = draw(apps)
    parts: list[str] = []
    used_decoys: list[str] = []
    for _ in range(draw(st.integers(1, 8))):
        kind = draw(st.sampled_from(["form", "decoy", "other", "filler"]))
        if kind == "form":
            parts.append(draw(forms(app)))
        elif kind == "decoy":
            d = draw(decoys(app))
            used_decoys.append(d)
            parts.append(d)
        elif kind == "other":
            parts.append(f"https://{app}zz.fly.dev ")
        else:
            parts.append(draw(fillers))
        parts.append(draw(st.sampled_from([" ", "\n", "\r\n", "\t", " = ", "('", "')\n"])))
    new = draw(new_bases).format(app=app)
    return app, "".join(parts), used_decoys, new


@FAST
@given(documents())
@example(("acme", "url = https://acme.fly.dev/v1 and status.acme.fly.dev.example.com\n",
          ["status.acme.fly.dev.example.com"], "https://acme.fly.dev.new.example.com"))
def test_rewrite_twice_is_a_no_op_and_decoys_stay(doc: tuple[str, str, list[str], str]) -> None:
    app, text, used_decoys, new = doc
    once = apply_rewrite(text, app, new)
    twice = apply_rewrite(once, app, new)
    assert twice == once
    for d in used_decoys:
        assert once.count(d) >= text.count(d), (d, text, once)
    # nothing of this app is left after a rewrite, except inside decoys
    mine, _ = find_in_text(once, app, "f")
    assert [h for h in mine if h.kind != "fdaa"] == []


@FAST
@given(app=apps, text=st.text(max_size=300))
def test_arbitrary_text_never_breaks_the_scanner_and_rewrite_keeps_line_count(app: str, text: str) -> None:
    mine, others = find_in_text(text, app, "f")
    for h in mine + others:
        lines = text.split("\n")
        assert lines[h.line - 1][h.column - 1:].startswith(h.old)
    out = apply_rewrite(text, app, "https://new.example.com")
    assert out.count("\n") == text.count("\n")


@FAST
@given(app=apps, decoy=st.data())
def test_decoys_alone_are_never_hits(app: str, decoy: st.DataObject) -> None:
    d = decoy.draw(decoys(app))
    mine, _ = find_in_text(f"x = {d}\n", app, "f")
    assert mine == [], d


@given(old=st.builds(lambda s, h, p: s + h + p, schemes, st.just("acme.fly.dev"), ports), new=new_bases)
@settings(max_examples=40, deadline=None, database=None)
def test_rewrite_url_keeps_scheme_only_when_there_was_one(old: str, new: str) -> None:
    out = rewrite_url(old, new.format(app="acme"))
    assert ("://" in out) == ("://" in old)
    assert not out.endswith("/")


# ------------------------------------------------------------------------------------------ parsers never crash
@FAST
@given(data=st.binary(max_size=2000))
@example(b"\xff\xfe\x00")
@example(b"\xef\xbb\xbf[[services]]\n[services]\n")
@example(b"a = [" * 200)
@example(b"x = " + b"[" * 5000 + b"]" * 5000)
@example(b"x = " + b"{a=" * 600 + b"1" + b"}" * 600)
def test_fly_toml_arbitrary_bytes_only_config_error(tmp_path_factory: pytest.TempPathFactory, data: bytes) -> None:
    d = tmp_path_factory.mktemp("ft")
    for name in ("fly.toml", "fly.json", "fly.yaml"):
        p = d / name
        p.write_bytes(data)
        try:
            load_fly_config(p)
        except ConfigError:
            pass


toml_values = st.recursive(
    st.one_of(st.integers(-10**6, 10**6), st.booleans(), st.text(max_size=10), st.floats(allow_nan=False),
              st.sampled_from(["a100-40gb", "l40s", "2gb", "stop", "off", "requests", "connections"])),
    lambda c: st.one_of(st.lists(c, max_size=3), st.dictionaries(st.sampled_from(
        ["app", "vm", "size", "gpu_kind", "memory", "cpus", "services", "http_service", "concurrency", "mounts",
         "source", "destination", "processes", "env", "build", "image", "dockerfile", "internal_port", "ports",
         "port", "handlers", "hard_limit", "soft_limit", "type", "auto_stop_machines", "min_machines_running",
         "gpus", "cpu_kind", "memory_mb", "checks", "deploy", "experimental", "cmd", "entrypoint", "statics"]),
        c, max_size=4)), max_leaves=12)


def _dump(obj: object) -> str:
    import json

    if isinstance(obj, bool):
        return "true" if obj else "false"
    if isinstance(obj, (int, float)):
        import math

        return repr(obj) if not isinstance(obj, float) or math.isfinite(obj) else "0"
    if isinstance(obj, str):
        return json.dumps(obj)
    if isinstance(obj, list):
        return "[" + ", ".join(_dump(x) for x in obj) + "]"
    if isinstance(obj, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {_dump(v)}" for k, v in obj.items()) + "}"
    raise TypeError(obj)


@FAST
@given(doc=st.dictionaries(st.sampled_from(["app", "primary_region", "vm", "services", "http_service", "mounts",
                                            "env", "build", "processes", "deploy", "kill_timeout", "vm.size",
                                            "experimental", "checks", "metrics", "statics", "swap_size_mb"]),
                           toml_values, max_size=8))
def test_fly_toml_structurally_wild_documents_only_config_error(tmp_path_factory: pytest.TempPathFactory,
                                                                 doc: dict[str, object]) -> None:
    """Valid TOML with every type in every place: a result or a ConfigError, nothing else."""
    text = "\n".join(f"{k} = {_dump(v)}" for k, v in doc.items()) + "\n"
    try:
        tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        assume(False)
    p = tmp_path_factory.mktemp("ft") / "fly.toml"
    p.write_text(text)
    try:
        load_fly_config(p)
    except ConfigError:
        pass


@FAST
@given(data=st.binary(max_size=2000), fmt=st.sampled_from([None, "dotenv", "env-dump", "fly-json", "fly-table"]))
@example(b"[{}]", "fly-json")
@example(b'[{"Name": 1}]', None)
@example(b'{"secrets": null}', None)
@example(b"A\x00B=1\x00", None)
@example(b"NAME DIGEST\n", None)
@example(b"K='''\n", "dotenv")
@example(b'K="""', "dotenv")
def test_secrets_arbitrary_bytes_only_config_error(data: bytes, fmt: str | None) -> None:
    try:
        parse_secrets(data, "s.env", fmt=fmt)
    except ConfigError:
        pass


@FAST
@given(text=st.text(max_size=600))
def test_secrets_arbitrary_text_only_config_error(text: str) -> None:
    for enc in ("utf-8", "utf-16"):
        try:
            parse_secrets(text.encode(enc, "surrogatepass"), "s.env")
        except ConfigError:
            pass


# ------------------------------------------------------------------------------------------ dotenv round trip
values = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",), exclude_characters="\r\x00"),
                 max_size=40)
names = st.from_regex(r"[A-Z_][A-Z0-9_]{0,12}", fullmatch=True)


def render_dotenv(items: dict[str, str]) -> str | None:
    """The .env a careful exporter writes: each value quoted with a quote it does not contain."""
    lines = []
    for k, v in items.items():
        if "\n" not in v and "'" not in v:
            lines.append(f"{k}='{v}'")
        elif "\n" not in v and '"' not in v:
            lines.append(f'{k}="{v}"')
        elif "'" not in v:
            lines.append(f"{k}='{v}'")
        elif '"' not in v:
            lines.append(f'{k}="{v}"')
        elif '"""' not in v and not v.endswith('"') and '"""' not in v.split("\n")[-1]:
            lines.append(f'{k}="""{v}"""')
        else:
            return None  # no dotenv quoting can hold it (fly secrets import cannot either)
    return "\n".join(lines) + "\n"


@FAST
@given(items=st.dictionaries(names, values, min_size=1, max_size=6))
@example({"A": "a#b", "B": "x = y", "C": " lead and trail ", "D": "pässwörd ✓", "E": "'\"", "F": ""})
@example({"PEM": "-----BEGIN KEY-----\nabc\n-----END KEY-----"})
@example({"Q": "it's \"quoted\" # not a comment"})
def test_dotenv_round_trips_values(items: dict[str, str]) -> None:
    text = render_dotenv(items)
    assume(text is not None)
    for enc in ("utf-8", "utf-8-sig", "utf-16"):
        exp = parse_secrets(text.encode(enc), "s.env", fmt="dotenv")
        got = {s.name: s.value.reveal() for s in exp.secrets if s.value is not None}
        assert got == items, (enc, text)
    crlf = parse_secrets(text.replace("\n", "\r\n").encode(), "s.env", fmt="dotenv")
    assert {s.name: s.value.reveal() for s in crlf.secrets if s.value is not None} == items


@FAST
@given(items=st.dictionaries(names, st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc", "Zl", "Zp")), max_size=30), min_size=1, max_size=6))
def test_env_dump_round_trips_single_line_values(items: dict[str, str]) -> None:
    assume(not any(k.startswith("FLY_") or k in ("PATH", "HOME", "HOSTNAME") for k in items))
    text = "PATH=/usr/bin\nHOME=/root\nFLY_APP_NAME=a\n" + "".join(f"{k}={v}\n" for k, v in items.items())
    exp = parse_secrets(text.encode(), "env", fmt="env-dump")
    got = {s.name: s.value.reveal() for s in exp.secrets if s.value is not None}
    for k, v in items.items():
        if k in got:  # runtime names (PORT, ...) are dropped on purpose
            assert got[k] == v


# ------------------------------------------------------------------------------------------ TOML line index
keys = st.from_regex(r"[a-z][a-z0-9_-]{0,8}", fullmatch=True)
scalars = st.one_of(st.integers(0, 999).map(str), st.text(alphabet="ab #=[]{}'\"x", max_size=8).map(
    lambda s: '"' + s.replace("\\", "").replace('"', "") + '"'), st.just('"""\nmulti = "x"\n[fake]\n"""'),
    st.just("[\n  1,\n  2, # ]\n]"), st.just("{ a = 1, b = \"]\" }"), st.just("'lit # [x]'"))


@st.composite
def toml_docs(draw: st.DrawFn) -> tuple[str, dict[tuple[object, ...], int]]:
    lines: list[str] = []
    expect: dict[tuple[object, ...], int] = {}
    arrays: dict[str, int] = {}

    def add_keys(prefix: tuple[object, ...]) -> None:
        used: set[str] = set()
        for _ in range(draw(st.integers(0, 3))):
            k = draw(keys)
            if k in used:
                continue
            used.add(k)
            quoted = draw(st.booleans())
            expect[prefix + (k,)] = len(lines) + 1
            entry = ("  " if prefix else "") + (f'"{k}"' if quoted else k) + " = " + draw(scalars)
            lines.extend(entry.split("\n"))
            if draw(st.booleans()):
                lines.append("# a comment with key = value and [table]")

    add_keys(())
    used_tables: set[str] = set()
    for _ in range(draw(st.integers(0, 4))):
        t = draw(keys)
        if t in used_tables or any(p[0] == t for p in expect):
            continue
        if draw(st.booleans()):
            arrays[t] = arrays.get(t, -1) + 1
            lines.append(f"[[{t}]]")
            prefix: tuple[object, ...] = (t, arrays[t])
            more = draw(st.integers(0, 1))
        else:
            used_tables.add(t)
            lines.append(f"[{t}]")
            prefix = (t,)
            more = 0
        expect[prefix] = len(lines)
        add_keys(prefix)
        for _ in range(more):
            arrays[t] += 1
            lines.append(f"[[{t}]]")
            expect[(t, arrays[t])] = len(lines)
            add_keys((t, arrays[t]))
        if prefix[0] in arrays:
            used_tables.add(t)
    return "\n".join(lines) + "\n", expect


@FAST
@given(doc=toml_docs())
def test_line_index_agrees_with_where_keys_are(doc: tuple[str, dict[tuple[object, ...], int]]) -> None:
    text, expect = doc
    try:
        tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        assume(False)
    idx = LineIndex(text)
    for path, line in expect.items():
        assert idx.line(*path) == line, (path, line, text)
