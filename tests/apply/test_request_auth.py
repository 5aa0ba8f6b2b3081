"""The client-auth rewrite (flymigrate.requestauth) on many client shapes: what it adds, where it refuses (a by-hand
line with file:line), that its output parses, sends the header by env NAME and is left alone the second time."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from flymigrate.requestauth import analyze, apply_edits
from flymigrate.scan import find_in_text

APP = "myapp"
RP = (("Authorization", "Bearer ", "RUNPOD_API_KEY"),)
MODAL = (("Modal-Key", "", "MODAL_KEY"), ("Modal-Secret", "", "MODAL_SECRET"))
NEW = "https://abc.api.runpod.ai"


def run(src: str, headers=RP, path: str = "client.py", renames=()):  # type: ignore[no-untyped-def]
    text = textwrap.dedent(src)
    hits, _ = find_in_text(text, APP, path)
    fa = analyze(text, path, hits, headers, renames)
    new = apply_edits(text, fa.edits)
    return fa, new


def added(src: str, headers=RP, **kw) -> str:  # type: ignore[no-untyped-def]
    fa, new = run(src, headers, **kw)
    assert not fa.manual, [s.plan_line for s in fa.manual]
    assert fa.changes, "nothing added"
    if kw.get("path", "client.py").endswith(".py"):
        ast.parse(new)
        again, _ = run(new.replace(f"https://{APP}.fly.dev", f"https://{APP}.fly.dev"), headers, **kw)
        assert not again.changes, f"a second pass would change it again: {[s.plan_line for s in again.changes]}"
    return new


BEARER = "f\"Bearer {os.environ['RUNPOD_API_KEY']}\""


# ---------------------------------------------------------------- Python shapes it rewrites
@pytest.mark.parametrize("src,expect", [
    # requests module function, URL literal, no headers: a headers= keyword, import os added
    ('import requests\nr = requests.post("https://myapp.fly.dev/generate", json={})\n',
     'import os\nimport requests\nr = requests.post("https://myapp.fly.dev/generate", json={}, headers={"Authorization": '
     + BEARER + '})\n'),
    # a constant, an f-string on it, merged into an existing dict literal (multi-line, trailing comma kept)
    ('import os\nimport requests\nBASE = "https://myapp.fly.dev"\nrequests.get(\n    f"{BASE}/v1/models",\n'
     '    headers={\n        "Accept": "application/json",\n    },\n)\n',
     'import os\nimport requests\nBASE = "https://myapp.fly.dev"\nrequests.get(\n    f"{BASE}/v1/models",\n'
     '    headers={\n        "Accept": "application/json", "Authorization": ' + BEARER + ',\n    },\n)\n'),
])
def test_exact_edits(src: str, expect: str) -> None:
    assert added(src) == expect


@pytest.mark.parametrize("src", [
    # concatenation, a headers variable (wrapped), Session methods
    '''
    import requests
    API = "https://myapp.fly.dev" + "/v1"
    H = {"Content-Type": "application/json"}
    s = requests.Session()
    s.post(API + "/chat", headers=H)
    ''',
    # httpx client with base_url: the header goes on the client
    '''
    import httpx
    client = httpx.Client(base_url="https://myapp.fly.dev", timeout=30)
    client.post("/generate", json={})
    ''',
    # httpx.AsyncClient with headers=dict, module function httpx.request(method, url)
    '''
    import httpx
    async def main():
        async with httpx.AsyncClient(base_url="https://myapp.fly.dev", headers={"X-A": "1"}) as c:
            await c.get("/health")
    httpx.request("GET", "https://myapp.fly.dev/x")
    ''',
    # urllib Request with positional headers, and urllib Request with no headers
    '''
    import urllib.request
    URL = "https://myapp.fly.dev/transcribe"
    req = urllib.request.Request(URL, b"data", {"Content-Type": "audio/wav"})
    req2 = urllib.request.Request(URL, data=b"x", method="POST")
    ''',
    # the URL from the environment with the Fly URL as default, rstrip'ed, in a function parameter
    '''
    import os, requests
    BASE = os.getenv("LLM_URL", "https://myapp.fly.dev").rstrip("/")

    def ask(url, prompt):
        return requests.post(url, json={"prompt": prompt}, timeout=10)

    ask(BASE + "/generate", "hi")
    ask(f"{BASE}/generate", "there")
    ''',
    # a class holding the URL on self, headers=None replaced
    '''
    import requests

    class Api:
        def __init__(self):
            self.base = "https://myapp.fly.dev"

        def go(self):
            return requests.get(self.base + "/x", headers=None)
    ''',
    # headers from a call: wrapped so it still works when it returns None
    '''
    import requests
    def hdrs():
        return {"A": "b"}
    requests.put("https://myapp.fly.dev/x", data="1", headers=hdrs())
    ''',
    # aiohttp session method
    '''
    import aiohttp
    async def f():
        async with aiohttp.ClientSession() as s:
            async with s.post("https://myapp.fly.dev/generate", json={}) as r:
                return await r.json()
    ''',
    # a bare host:port (OLLAMA_HOST style) in an f-string URL
    '''
    import requests
    HOST = "myapp.flycast:11434"
    requests.post(f"http://{HOST}/api/generate", json={})
    ''',
    # docstring first, from __future__: import os goes after them
    '''
    """Client."""
    from __future__ import annotations
    import requests
    requests.get("https://myapp.fly.dev/")
    ''',
])
def test_python_shapes_get_the_header(src: str) -> None:
    new = added(src)
    assert "os.environ['RUNPOD_API_KEY']" in new
    tree = ast.parse(new)
    assert any(isinstance(n, ast.Import) and any(a.name == "os" for a in n.names) for n in tree.body)
    if src.lstrip().startswith('"""'):
        assert isinstance(tree.body[0], ast.Expr) and isinstance(tree.body[1], ast.ImportFrom)


def test_openai_sdk_takes_api_key_from_the_env() -> None:
    new = added('''
    from openai import OpenAI
    client = OpenAI(base_url="https://myapp.fly.dev/v1", api_key="EMPTY")
    other = OpenAI(base_url="https://myapp.fly.dev/v1")
    ''')
    assert 'api_key=os.environ["RUNPOD_API_KEY"])' in new
    assert new.count('os.environ["RUNPOD_API_KEY"]') == 2 and "EMPTY" not in new


def test_openai_sdk_gets_default_headers_for_a_header_pair() -> None:
    new = added('from openai import OpenAI\nc = OpenAI(base_url="https://myapp.fly.dev/v1", api_key="k")\n',
                headers=MODAL)
    assert 'default_headers={"Modal-Key": os.environ["MODAL_KEY"], "Modal-Secret": os.environ["MODAL_SECRET"]}' in new
    assert 'api_key="k"' in new


def test_a_client_that_already_sends_the_key_is_left_alone() -> None:
    src = textwrap.dedent('''
    import os, requests
    H = {"Authorization": f"Bearer {os.environ['VLLM_API_KEY']}"}
    requests.post("https://myapp.fly.dev/v1/chat", headers=H)
    requests.post("https://myapp.fly.dev/v1/chat", headers={"authorization": "Bearer " + os.environ["RUNPOD_API_KEY"]})
    ''')
    fa, new = run(src, renames=(("VLLM_API_KEY", "RUNPOD_API_KEY"),))
    assert not fa.sites and new == src


def test_other_hosts_and_unrelated_calls_are_untouched() -> None:
    src = textwrap.dedent('''
    import requests
    URL = "https://myapp.fly.dev/x"
    print(URL)
    log = URL.split("/")
    requests.get("https://example.com/other")
    requests.get("https://otherapp.fly.dev/x")
    ''')
    fa, new = run(src)
    assert not fa.changes and new == src


# ---------------------------------------------------------------- shapes it refuses: a by-hand line with file:line
@pytest.mark.parametrize("src,line,why", [
    # the name is the app's URL only on some paths
    ('import requests\nU = "https://myapp.fly.dev"\nif 1:\n    U = "https://example.com"\nrequests.get(U)\n', 5,
     "only on some paths"),
    # headers through **kwargs
    ('import requests\nkw = {}\nrequests.get("https://myapp.fly.dev/", **kw)\n', 3, "**kwargs"),
    # urlopen(URL) takes no headers
    ('import urllib.request\nurllib.request.urlopen("https://myapp.fly.dev/x")\n', 2, "urlopen"),
    # a library flymigrate does not know, given the URL
    ('import websockets\nwebsockets.connect("wss://myapp.fly.dev/ws")\n', 2, "does not know"),
    # the app's own key in Authorization: the RunPod key cannot share the header
    ('import requests\nrequests.get("https://myapp.fly.dev/", headers={"Authorization": "Bearer sk-x"})\n', 2,
     "its own Authorization"),
    # an unknown client built on base_url
    ('from foo import Thing\nt = Thing(base_url="https://myapp.fly.dev")\n', 2, "does not know"),
    # the URL defined here, used nowhere in this file
    ('SERVICE_URL = "https://myapp.fly.dev"\n', 1, "no request that uses it"),
])
def test_refused_shapes_are_listed_by_hand(src: str, line: int, why: str) -> None:
    fa, new = run(src)
    assert new == src
    assert [s.line for s in fa.manual] == [line], [s.plan_line for s in fa.manual]
    assert why in fa.manual[0].what and "Authorization: Bearer $RUNPOD_API_KEY" in fa.manual[0].what
    assert fa.manual[0].plan_line.startswith(f"client.py:{line}: ")


def test_unparseable_python_and_javascript_are_by_hand() -> None:
    fa, _ = run('print "https://myapp.fly.dev"\n')
    assert [s.action for s in fa.sites] == ["manual"] and "does not parse" in fa.sites[0].what
    fa, new = run('resp, err := http.Get("https://myapp.fly.dev/x")\n', path="cmd/client.go")
    assert not fa.edits and fa.manual[0].plan_line.startswith("cmd/client.go:1: ")
    assert "RUNPOD_API_KEY" in fa.manual[0].what


def test_a_url_only_in_a_comment_needs_nothing() -> None:
    fa, _ = run('"""Calls https://myapp.fly.dev for answers."""\n# see https://myapp.fly.dev/docs\nX = 1\n')
    assert not fa.sites


# ---------------------------------------------------------------- shell
def test_curl_gets_the_header_by_name() -> None:
    src = ('#!/bin/sh\nBASE=https://myapp.fly.dev\ncurl -s "$BASE/generate" \\\n  -d \'{}\'\n'
           'curl -sf https://myapp.fly.dev/health\ncurl https://example.com/\n'
           'curl -H "Authorization: Bearer $RUNPOD_API_KEY" https://myapp.fly.dev/x\n'
           'wget -q https://myapp.fly.dev/y\n')
    fa, new = run(src, path="scripts/smoke.sh")
    assert new.count('curl -H "Authorization: Bearer $RUNPOD_API_KEY" -s') == 2
    assert "curl https://example.com/" in new
    assert [s.line for s in fa.changes] == [3, 5] and [s.line for s in fa.manual] == [8]
    fa2, new2 = run(new, path="scripts/smoke.sh")
    assert not fa2.changes and new2 == new


def test_curl_with_the_apps_own_authorization_is_by_hand() -> None:
    fa, new = run('curl -H "Authorization: Bearer $VLLM_API_KEY" https://myapp.fly.dev/v1/models\n', path="t.sh")
    assert new.startswith('curl -H "Authorization: Bearer $VLLM_API_KEY"') and fa.manual and not fa.changes
    fa, new = run('curl -H "Authorization: Bearer $VLLM_API_KEY" https://myapp.fly.dev/v1/models\n', path="t.sh",
                  renames=(("VLLM_API_KEY", "RUNPOD_API_KEY"),))
    assert not fa.sites


# ---------------------------------------------------------------- the rewritten client really sends it (a real server)
def test_the_rewritten_client_sends_the_key_read_from_its_environment(tmp_path: Path) -> None:
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    seen: list[str | None] = []

    class H(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            seen.append(self.headers.get("Authorization"))
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *a: object) -> None:
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        src = textwrap.dedent('''
        import urllib.request
        URL = "https://myapp.fly.dev/transcribe"
        req = urllib.request.Request(URL, data=b"x", method="POST", headers={"Content-Type": "audio/wav"})
        print(urllib.request.urlopen(req, timeout=10).read().decode())
        ''')
        fa, new = run(src)
        local = f"http://127.0.0.1:{srv.server_address[1]}"
        (tmp_path / "c.py").write_text(new.replace("https://myapp.fly.dev", local))
        assert "rpa_" not in new
        env = {**os.environ, "RUNPOD_API_KEY": "rpa_TESTkey123"}
        r = subprocess.run([sys.executable, str(tmp_path / "c.py")], env=env, capture_output=True, text=True,
                           timeout=30)
        assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr
        assert seen == ["Bearer rpa_TESTkey123"]
    finally:
        srv.shutdown()
        srv.server_close()


def test_readme_curl_examples_in_fenced_blocks() -> None:
    src = ("# Demo\nCall it at https://myapp.fly.dev/ (prose: untouched).\n\n```sh\n"
           "❯ curl https://myapp.fly.dev/v1/completions \\\n  -d '{}'\n```\n\nInline `curl https://myapp.fly.dev/x`.\n")
    fa, new = run(src, path="README.md")
    assert [s.line for s in fa.changes] == [5] and not fa.manual
    assert '❯ curl -H "Authorization: Bearer $RUNPOD_API_KEY" https://myapp.fly.dev/v1/completions' in new
    assert "Inline `curl https://myapp.fly.dev/x`" in new and new.count("RUNPOD_API_KEY") == 1


def test_a_headers_parameter_that_may_be_none_is_spread_safely(monkeypatch: pytest.MonkeyPatch) -> None:
    new = added('''
    import requests
    def call(path, headers=None):
        return requests.get("https://myapp.fly.dev" + path, headers=headers)
    ''')
    assert "headers={**(headers or {}), \"Authorization\": " in new
    ns: dict = {}
    monkeypatch.setenv("RUNPOD_API_KEY", "rpa_x")
    exec(compile("import os\nheaders = None\nh = " + new.split("headers=", 2)[2].rsplit(")", 1)[0], "t", "exec"), ns)
    assert ns["h"]["Authorization"].startswith("Bearer ")


# ---------------------------------------------------------------- JavaScript / TypeScript fetch
JS = '''// client
const BASE: string = process.env.LLM_URL ?? "https://myapp.fly.dev";
const API = `${BASE}/v1`;

export async function main(opts) {
  const r1 = await fetch(`${API}/chat/completions`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ model: "m", messages: [] }),
  });
  const r2 = await fetch("https://myapp.fly.dev/health");
  const r3 = await fetch(API + "/models", { method: "GET" });
  const h = { Accept: "x" };
  const r4 = await fetch(API, { headers: h });
  const r5 = await fetch(API, opts);
  const r6 = await axios.post(API + "/x", {});
  const r7 = await fetch("https://example.com/{", { headers: { a: "}" } });
  console.log(BASE);
}
'''


def test_js_fetch_gets_the_header_and_the_rest_is_by_hand(tmp_path: Path) -> None:
    fa, new = run(JS, path="src/client.ts")
    assert [s.line for s in fa.changes] == [6, 11, 12, 14]
    assert [(s.line, "options are not an object" in s.what or "only fetch" in s.what) for s in fa.manual] == [
        (15, True), (16, True)]
    assert new.count("`Bearer ${process.env.RUNPOD_API_KEY}`") == 4
    assert 'headers: { "Authorization": `Bearer ${process.env.RUNPOD_API_KEY}`, "Content-Type"' in new
    assert "fetch(API, { headers: { ...h, " in new and 'fetch("https://example.com/{", { headers: { a: "}" } })' in new
    again, new2 = run(new, path="src/client.ts")
    assert not again.changes and new2 == new
    import shutil

    if shutil.which("node"):
        (tmp_path / "c.mjs").write_text(new.replace(": string", ""))
        r = subprocess.run(["node", "--check", str(tmp_path / "c.mjs")], capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r.stderr


def test_browser_code_never_gets_the_key() -> None:
    fa, new = run('"use client";\nexport const go = () => fetch("https://myapp.fly.dev/x");\n', path="app/page.js")
    assert not fa.changes and "browser code" in fa.manual[0].what and new.count("RUNPOD") == 0
    fa, _ = run('export const go = () => fetch("https://myapp.fly.dev/x");\n', path="app/Widget.tsx")
    assert not fa.changes and fa.manual


def test_a_key_read_into_a_variable_counts_after_the_rename() -> None:
    src = textwrap.dedent('''
    import os, requests
    API_KEY = os.environ["VLLM_API_KEY"]
    HEADERS = {"Authorization": f"Bearer {API_KEY}"}
    requests.post("https://myapp.fly.dev/v1/chat", headers=HEADERS)
    ''')
    fa, new = run(src, renames=(("VLLM_API_KEY", "RUNPOD_API_KEY"),))
    assert not fa.sites and new == src
    fa, _ = run(src)  # no rename (the key is not the app's): the app's key would take the platform's header
    assert fa.manual and "its own Authorization" in fa.manual[0].what


def test_a_configured_url_asks_the_code_that_reads_it() -> None:
    fa, new = run("llm:\n  url: http://myapp.flycast\n", path="web/config.yaml")
    assert not fa.edits and [s.plan_line.split(": ", 1)[0] for s in fa.manual] == ["web/config.yaml:2"]
    assert "the code that reads it must send" in fa.manual[0].what
    fa, _ = run('[env]\n  SELF = "https://myapp.fly.dev"\n', path="fly.toml")
    assert not fa.sites  # the app's own config is not a client


def test_a_configured_url_that_a_rewritten_client_reads_needs_nothing_more() -> None:
    from flymigrate.requestauth import plan_sites

    env = "LLM_URL=http://myapp.flycast:8000\nOTHER_URL=https://myapp.fly.dev\n"
    code = 'import os, requests\nrequests.get(os.environ.get("LLM_URL", "https://myapp.fly.dev") + "/x")\n'
    hits = find_in_text(env, APP, ".env")[0] + find_in_text(code, APP, "c.py")[0]
    adds, manual = plan_sites(hits, [(".env", env), ("c.py", code)], RP)
    assert [a.split(": ")[0] for a in adds] == ["c.py:2"]
    assert [m.split(": ")[0] for m in manual] == [".env:2"]  # OTHER_URL: read by code elsewhere
