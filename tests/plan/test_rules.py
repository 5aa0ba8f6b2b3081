"""Each Dockerfile / script rule holds its detector and its fixer: what the plan lists as an automatic fix is gone
from what apply writes, the rewrite is idempotent, and a removed shim takes exactly its and-or item with it.

Inputs: every Dockerfile and script of tests/fixtures/apps, examples/ and ../shared/corpus (read in place), plus
the regression inputs of issue 12 (shims and IPv6 binds the plan listed and apply left)."""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flymigrate import api
from flymigrate.apply import ApplyOptions
from flymigrate.dockerplan import analyze
from flymigrate.model import FlyApp
from flymigrate.parse.dockerfile import parse_dockerfile_text
from flymigrate.rewrite import RewriteContext, rewrite_dockerfile, rewrite_script
from flymigrate.rules import SHIM, TEXT_RULES, check_script, needs_cuda_base
from flymigrate.shell import ShellSyntaxError, parse, remove_commands

from .helpers import CORPUS, EXAMPLE, FIXTURES

APP = FlyApp("fly.toml", app="t", primary_region="ord")

# ------------------------------------------------------------------ inputs

REGRESSION_DOCKERFILES = {
    "ldconfig-or-true": "FROM nvidia/cuda:12.4.1-runtime-ubuntu22.04\nRUN ldconfig /usr/lib64-nvidia || true\n",
    "smi-tee": "FROM nvidia/cuda:12.4.1-runtime-ubuntu22.04\nRUN nvidia-smi -L | tee /tmp/gpu\n",
    "entrypoint-shell": ("FROM vllm/vllm-openai:v0.6.3\nENTRYPOINT nvidia-smi && exec python3 -m "
                         "vllm.entrypoints.openai.api_server --host  ::\n"),
    "entrypoint-exec": ('FROM vllm/vllm-openai:v0.6.3\nENTRYPOINT ["sh","-c","nvidia-smi && exec python3 -m '
                        'vllm.entrypoints.openai.api_server --host  ::"]\n'),
    "usr-bin-smi": "FROM nvidia/cuda:12.4.1-base-ubuntu22.04\nRUN apt-get update && /usr/bin/nvidia-smi && make\n",
    "ldconfig-in-if": ("FROM nvidia/cuda:12.4.1-base-ubuntu22.04\n"
                       "RUN if [ -d /usr/lib64-nvidia ]; then ldconfig /usr/lib64-nvidia; fi && echo done\n"),
    "continued": ("FROM nvidia/cuda:12.4.1-base-ubuntu22.04\nRUN apt-get update \\\n    && ldconfig \\\n"
                  "    && rm -rf /usr/local/cuda/lib64/stubs \\\n    && pip install x\n"),
    "ipv6-forms": ('FROM nvidia/cuda:12.4.1-base-ubuntu22.04\nENV HOST="::" OTHER=1\nENV LIVEBOOK_IP ::\n'
                   'ENV ELIXIR_ERL_OPTIONS="-proto_dist inet6_tcp"\n'
                   'CMD ["uvicorn", "app:app", "--host=[::]", "--port", "8000"]\n'),
    "ipv6-bind-port": "FROM x\nCMD gunicorn -b [::]:8000 app:app\n",
    "ipv4-already": 'FROM x\nENV HOST=0.0.0.0\nCMD ["uvicorn", "app:app", "--host", "0.0.0.0"]\n',
    "shim-in-subshell-text": 'FROM x\nRUN echo "$(nvidia-smi -L)" > /gpu.txt\n',
    "heredoc": "FROM x\nRUN <<EOF\nset -e\nldconfig\nnvidia-smi || echo none\npip install y\nEOF\n",
    "fly-env": 'FROM x\nENV NAME=$FLY_APP_NAME\nCMD ["sh", "-c", "serve --region ${FLY_REGION} --who $FLY_NOPE"]\n',
    "baked": "FROM x\nRUN ollama serve & sleep 5 && ollama pull llama3\nRUN pip install a && huggingface-cli download o/m\n",
}
REGRESSION_SCRIPTS = {
    "no-gpu-fallback.sh": '#!/bin/sh\nset -e\nnvidia-smi || echo "no gpu"\nexec serve --host  ::\n',
    "if-block.sh": "#!/bin/bash\nif [ -d /usr/lib64-nvidia ]; then\n  ldconfig /usr/lib64-nvidia\nfi\nexec x\n",
    "inline.sh": "#!/bin/sh\ncd /app; nvidia-smi; exec python app.py --bind=[::]:8000 # listen on [::]\n",
    "comment.sh": "#!/bin/sh\n# Update ldconfig cache\nldconfig\nHOST=\"::\" exec y\n",
    "quoted.sh": "#!/bin/sh\necho 'nvidia-smi is fine here'\nsu -c \"nvidia-smi && exec z\" app\n",
    "case.sh": ('#!/bin/sh\ncase "$1" in\n  gpu)\n    nvidia-smi\n    ;;\n  serve) ldconfig; exec serve --host ::;;\n'
                '  *) echo "usage" ;;\nesac\n(cd /x && ldconfig)\n'),
}


def _is_dockerfile(p: Path) -> bool:
    return p.name.startswith("Dockerfile") or p.name.endswith(".Dockerfile")


def _is_script(p: Path) -> bool:
    if p.suffix == ".sh" or "entrypoint" in p.name or (p.name.startswith("start") and not p.suffix):
        return True
    if p.suffix:
        return False
    try:
        with open(p, "rb") as fh:
            head = fh.read(40)
    except OSError:
        return False
    return head.startswith(b"#!") and re.match(rb"#!\s*\S*(sh|bash|env\s+(ba)?sh)\b", head) is not None


def _app_files() -> list[Path]:
    roots = [*sorted(FIXTURES.iterdir()), EXAMPLE, *(sorted(p for p in CORPUS.iterdir() if p.is_dir())
                                                   if CORPUS.is_dir() else [])]
    out = []
    for root in roots:
        for p in sorted(root.rglob("*")):
            if p.is_file() and not p.is_symlink() and p.stat().st_size < 200_000 and ".git" not in p.parts:
                if _is_dockerfile(p) or _is_script(p):
                    out.append(p)
    return out


APP_FILES = _app_files()
DOCKERFILES = [(str(p.relative_to(p.parents[1])), p.read_text("utf-8", "replace"))
               for p in APP_FILES if _is_dockerfile(p)] + sorted(REGRESSION_DOCKERFILES.items())
SCRIPTS = [(str(p.relative_to(p.parents[1])), p.read_text("utf-8", "replace"))
           for p in APP_FILES if not _is_dockerfile(p)] + sorted(REGRESSION_SCRIPTS.items())


def test_the_inputs_are_there():
    # the corpus and fixtures are read in place: a moved directory must not make the tests below pass vacuously
    assert len([p for p in APP_FILES if _is_dockerfile(p)]) >= 15
    assert len([p for p in APP_FILES if not _is_dockerfile(p)]) >= 8


AUTH = "the target's gateway takes its key in Authorization"  # RewriteContext.drop_app_auth when the rule is on


def _ctx(drop_baked: bool, auth: str = "") -> RewriteContext:
    return RewriteContext(APP, "runpod", "t", drop_baked, drop_app_auth=auth)


def _code(text: str) -> str:
    """Instruction text without comment lines and our own notes (which quote what they removed)."""
    return "\n".join(ln.split("# flymigrate:")[0] for ln in text.split("\n") if not ln.lstrip().startswith("#"))


def _hits(df_text: str, rule) -> int:
    df = parse_dockerfile_text(df_text, "Dockerfile")
    return sum(1 for ins in df.instructions if ins.keyword in rule.keywords and rule.detect(_code(ins.args)))


# ------------------------------------------------------------------ the contract, over every input


@pytest.mark.parametrize("drop_baked,auth", [(False, ""), (True, AUTH)])
@pytest.mark.parametrize("name,text", DOCKERFILES, ids=[n for n, _ in DOCKERFILES])
def test_dockerfile_auto_fixes_hold_and_rewrite_is_idempotent(name, text, drop_baked, auth):
    df = parse_dockerfile_text(text, "Dockerfile")
    issues = analyze(APP, df, {}, uses_gpu=True, drop_baked=drop_baked, drop_app_auth=auth)
    out = rewrite_dockerfile(text, _ctx(drop_baked, auth), uses_gpu=True)
    for rule in TEXT_RULES:
        if rule.gated and not auth:  # off: it finds nothing and changes nothing
            assert not [i for i in issues if i.kind == rule.kind]
            continue
        mine = [i for i in issues if i.kind == rule.kind and i.where and i.where.startswith("Dockerfile:")]
        manual = [i for i in mine if not i.auto]
        # an automatic fix leaves nothing for the detector; a manual one is left as it was
        assert _hits(out, rule) <= len(manual), (rule.kind, out)
        if mine and not manual:
            assert _hits(out, rule) == 0
    for i in issues:
        if i.kind == "no-cuda":
            assert (needs_cuda_base(parse_dockerfile_text(out, "Dockerfile")) is None) is i.auto
    assert rewrite_dockerfile(out, _ctx(drop_baked, auth), uses_gpu=True) == out, "a second pass changed the output"
    if not any(i.where and i.where.startswith("Dockerfile:") for i in issues):
        assert out == text, "the rewrite changed a Dockerfile the plan found nothing in"


@pytest.mark.parametrize("auth", ["", AUTH])
@pytest.mark.parametrize("name,text", SCRIPTS, ids=[n for n, _ in SCRIPTS])
def test_script_auto_fixes_hold_and_rewrite_is_idempotent(name, text, auth):
    issues = analyze(APP, None, {name: text}, uses_gpu=True, drop_app_auth=auth)
    ctx = _ctx(False, auth)
    out = rewrite_script(text, ctx, name)
    after = check_script(out, _ctx(False, auth), name)
    for rule in TEXT_RULES:
        mine = [i for i in issues if i.kind == rule.kind]
        manual = [i for i in mine if not i.auto]
        left = [c for c in after if c.rule is rule]
        assert len(left) <= len(manual), (rule.kind, out)
        if mine and not manual:
            assert not left
    assert rewrite_script(out, _ctx(False, auth), name) == out, "a second pass changed the output"
    if not issues:
        assert out == text
    # every manual finding is named to the user
    for i in issues:
        if not i.auto:
            assert any(f"{name}:{i.line}:" in n for n in ctx.notes)


# ------------------------------------------------------------------ regression cases (issue 12, item 1)


def _rw(text: str, drop_baked: bool = False) -> tuple[str, list[str]]:
    ctx = _ctx(drop_baked)
    return rewrite_dockerfile(text, ctx, uses_gpu=True), ctx.notes


def _instr(out: str) -> list[str]:
    return [ln for ln in out.split("\n") if ln and not ln.startswith("#")]


@pytest.mark.parametrize("name,expect", [
    ("ldconfig-or-true", ["FROM nvidia/cuda:12.4.1-runtime-ubuntu22.04"]),
    ("smi-tee", ["FROM nvidia/cuda:12.4.1-runtime-ubuntu22.04"]),
    ("entrypoint-shell", ["FROM vllm/vllm-openai:v0.6.3",
                          "ENTRYPOINT exec python3 -m vllm.entrypoints.openai.api_server --host  0.0.0.0"]),
    ("entrypoint-exec", ["FROM vllm/vllm-openai:v0.6.3",
                         'ENTRYPOINT ["sh", "-c", "exec python3 -m vllm.entrypoints.openai.api_server --host  '
                         '0.0.0.0"]']),
    ("usr-bin-smi", ["FROM nvidia/cuda:12.4.1-base-ubuntu22.04", "RUN apt-get update && make"]),
    ("ldconfig-in-if", ["FROM nvidia/cuda:12.4.1-base-ubuntu22.04",
                        "RUN if [ -d /usr/lib64-nvidia ]; then true; fi && echo done"]),
    ("continued", ["FROM nvidia/cuda:12.4.1-base-ubuntu22.04", "RUN apt-get update && pip install x"]),
    ("ipv6-forms", ["FROM nvidia/cuda:12.4.1-base-ubuntu22.04", 'ENV HOST="0.0.0.0" OTHER=1',
                    "ENV LIVEBOOK_IP 0.0.0.0", 'ENV ELIXIR_ERL_OPTIONS=""',
                    'CMD ["uvicorn", "app:app", "--host=0.0.0.0", "--port", "8000"]']),
    ("ipv6-bind-port", ["FROM x", "CMD gunicorn -b 0.0.0.0:8000 app:app"]),
    ("heredoc", ["FROM x", "RUN <<EOF", "set -e", "pip install y", "EOF"]),
    ("fly-env", ["FROM x", "ENV NAME=t", 'CMD ["sh", "-c", "serve --region ord --who $FLY_NOPE"]']),
])
def test_regression_dockerfiles(name, expect):
    out, _notes = _rw(REGRESSION_DOCKERFILES[name])
    assert _instr(out) == expect
    issues = analyze(APP, parse_dockerfile_text(REGRESSION_DOCKERFILES[name], "Dockerfile"), {}, uses_gpu=True)
    assert issues and all(i.auto for i in issues if i.kind != "fly-env"), issues


def test_what_cannot_be_removed_is_manual_and_left_alone():
    text = REGRESSION_DOCKERFILES["shim-in-subshell-text"]
    out, notes = _rw(text)
    assert _instr(out) == _instr(text)
    (issue,) = analyze(APP, parse_dockerfile_text(text, "Dockerfile"), {}, uses_gpu=True)
    assert issue.kind == "driver-shim" and issue.auto is False
    assert any("Dockerfile:2" in n and "by hand" in n for n in notes)
    # an unknown FLY_* variable stays, and says so
    issues = analyze(APP, parse_dockerfile_text(REGRESSION_DOCKERFILES["fly-env"], "Dockerfile"), {}, uses_gpu=True)
    assert [(i.line, i.auto) for i in issues if i.kind == "fly-env"] == [(2, True), (3, False)]


def test_ipv4_already_is_no_finding():
    text = REGRESSION_DOCKERFILES["ipv4-already"]
    assert analyze(APP, parse_dockerfile_text(text, "Dockerfile"), {}, uses_gpu=True) == []
    assert _rw(text)[0] == text


def test_baked_downloads_go_only_with_a_weights_source():
    text = REGRESSION_DOCKERFILES["baked"]
    df = parse_dockerfile_text(text, "Dockerfile")
    assert {i.auto for i in analyze(APP, df, {}, uses_gpu=True) if i.kind == "baked-weights"} == {False}
    assert {i.auto for i in analyze(APP, df, {}, uses_gpu=True, drop_baked=True) if i.kind == "baked-weights"} == {True}
    assert _instr(_rw(text, drop_baked=True)[0]) == ["FROM x", "RUN pip install a"]
    assert _instr(_rw(text)[0]) == _instr(text)


@pytest.mark.parametrize("name,expect", [
    ("no-gpu-fallback.sh", '#!/bin/sh\nset -e\n# flymigrate: removed Fly GPU driver shim: nvidia-smi || echo "no gpu"'
                           "\nexec serve --host  0.0.0.0\n"),
    ("if-block.sh", "#!/bin/bash\nif [ -d /usr/lib64-nvidia ]; then\n  : # flymigrate: removed Fly GPU driver shim: "
                    "ldconfig /usr/lib64-nvidia\nfi\nexec x\n"),
    ("inline.sh", "#!/bin/sh\ncd /app; exec python app.py --bind=0.0.0.0:8000 # listen on [::]\n"),
    ("comment.sh", "#!/bin/sh\n# Update ldconfig cache\n# flymigrate: removed Fly GPU driver shim: ldconfig\n"
                   'HOST="0.0.0.0" exec y\n'),
    ("case.sh", '#!/bin/sh\ncase "$1" in\n  gpu)\n    # flymigrate: removed Fly GPU driver shim: nvidia-smi\n    ;;\n'
                '  serve) true; exec serve --host 0.0.0.0;;\n  *) echo "usage" ;;\nesac\n(cd /x)\n'),
])
def test_regression_scripts(name, expect):
    text = REGRESSION_SCRIPTS[name]
    assert rewrite_script(text, _ctx(False), name) == expect
    issues = analyze(APP, None, {name: text}, uses_gpu=True)
    assert issues and all(i.auto for i in issues)
    if shutil.which("sh"):
        r = subprocess.run(["sh", "-n"], input=expect, text=True, capture_output=True, timeout=10)
        assert r.returncode == 0, r.stderr


def test_a_comment_is_not_a_finding():
    issues = analyze(APP, None, {"comment.sh": REGRESSION_SCRIPTS["comment.sh"]}, uses_gpu=True)
    assert [(i.kind, i.line) for i in issues] == [("driver-shim", 3), ("ipv6-bind", 4)]


def test_a_quoted_shim_is_manual():
    issues = analyze(APP, None, {"quoted.sh": REGRESSION_SCRIPTS["quoted.sh"]}, uses_gpu=True)
    assert [(i.kind, i.line, i.auto) for i in issues] == [("driver-shim", 2, False), ("driver-shim", 3, False)]


def test_plan_and_apply_agree_on_the_issue_12_app(tmp_path: Path) -> None:
    """End to end through the API: what the plan lists as automatic is gone from the files apply writes."""
    app = tmp_path / "app"
    shutil.copytree(EXAMPLE, app)
    (app / "Dockerfile").write_text(
        "FROM vllm/vllm-openai:v0.6.3\nRUN ldconfig /usr/lib64-nvidia || true\nRUN nvidia-smi -L | tee /tmp/gpu\n"
        "COPY start.sh /app/start.sh\n"
        "ENTRYPOINT nvidia-smi && exec python3 -m vllm.entrypoints.openai.api_server --host  ::\n")
    (app / "start.sh").write_text('#!/bin/sh\nnvidia-smi || echo "no gpu"\nexec python3 -m x --host "[::]"\n')
    plan = api.plan(app, "runpod")
    listed = [i for i in plan.docker_issues if i.kind in ("driver-shim", "ipv6-bind") and i.where
              and not i.where.startswith("fly.toml")]
    assert len(listed) >= 6 and all(i.auto for i in listed)
    opts = ApplyOptions(target="runpod", only=("dockerfile",))
    api.apply(app, "runpod", options=opts, reporter=lambda e: None)
    df_out = (app / "Dockerfile").read_text()
    sh_out = (app / "start.sh").read_text()
    assert _hits(df_out, SHIM) == 0 and not check_script(sh_out, _ctx(False), "start.sh")
    assert "--host  0.0.0.0" in df_out and '--host "0.0.0.0"' in sh_out


# ------------------------------------------------------------------ the splitter, as a property

_NORMAL = st.sampled_from(["ok a", "ok b", "ok c", "fail d", "fail e", "ok 'f g'", 'ok "h && i"', "ok $(ok j)"])
_SHIMS = st.sampled_from(["nvidia-smi", "ldconfig /usr/lib64-nvidia", "nvidia-smi -L | tee /dev/null",
                          "sudo ldconfig", "nvidia-smi >/dev/null 2>&1", "rm -rf /usr/local/cuda/lib64/stubs"])
_CMD = st.one_of(_NORMAL, _SHIMS)
_PIPE = st.one_of(_CMD, st.tuples(_NORMAL, _CMD).map(lambda t: f"{t[0]} | cat"))
_ANDOR = st.lists(st.tuples(st.sampled_from(["&&", "||"]), _PIPE), min_size=0, max_size=3).flatmap(
    lambda rest: _PIPE.map(lambda first: first + "".join(f" {op} {p}" for op, p in rest)))
_ITEM = st.one_of(_ANDOR, _ANDOR, st.tuples(_ANDOR, _ANDOR).map(lambda t: f"if {t[0]}; then {t[1]}; fi"),
                  _ANDOR.map(lambda a: f"( {a} )"))
_LINE = st.lists(st.tuples(_ITEM, st.sampled_from(["; ", " & ", "\n"])), min_size=1, max_size=4).map(
    lambda items: "".join(i + s for i, s in items[:-1]) + items[-1][0])


def _shim_pred(cmd, text):
    return SHIM.removes(cmd, text)


@pytest.fixture(scope="module")
def fake_bin():
    d = Path(tempfile.mkdtemp(prefix="fm-shims-"))
    for name in ("nvidia-smi", "ldconfig", "sudo"):
        p = d / name
        p.write_text('#!/bin/sh\nif [ "$(basename "$0")" = sudo ]; then exec "$@"; fi\nexit 0\n')
        p.chmod(p.stat().st_mode | stat.S_IXUSR)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def _run(script: str, fake_bin: Path) -> list[str]:
    prelude = 'ok() { echo "ok $1"; }\nfail() { echo "fail $1"; return 1; }\nrm() { :; }\n'
    env = {"PATH": f"{fake_bin}:{os.environ.get('PATH', '/usr/bin:/bin')}"}
    r = subprocess.run(["sh", "-c", prelude + script + "\nwait\n"], text=True, capture_output=True, env=env,
                       timeout=10)
    return r.stdout.splitlines()


@pytest.mark.skipif(shutil.which("sh") is None, reason="needs a POSIX sh")
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(_LINE)
def test_removing_shims_keeps_everything_else(fake_bin, line):
    res = remove_commands(line, _shim_pred)
    new = "" if res.text is None else res.text
    # no shim left, and what is left is still shell this reader (and sh) accepts
    assert not SHIM.detect(new), new
    try:
        parse(new)
    except ShellSyntaxError as e:  # pragma: no cover - the assertion message is the point
        raise AssertionError(f"{line!r} -> {new!r}: {e}") from None
    # the non-shim commands that remain are the original's, in order
    names = re.compile(r"\b(?:ok|fail) (?:[a-j]|'f g'|\"h && i\")")
    old_seq = names.findall(line)
    it = iter(old_seq)
    assert all(any(m == o for o in it) for m in names.findall(new)), (line, new)
    # and running it does what the original did when every shim succeeds
    before, after = _run(line, fake_bin), _run(new, fake_bin)
    if "&" in line.replace("&&", ""):
        before, after = sorted(before), sorted(after)
    assert before == after, (line, new)


@pytest.mark.parametrize("line,expect", [
    ("ldconfig /usr/lib64-nvidia || true", None),
    ("nvidia-smi -L | tee /tmp/gpu", None),
    ("A && nvidia-smi && B", "A && B"),
    ("nvidia-smi && exec X", "exec X"),
    ('nvidia-smi || echo "no gpu"', None),
    ("A || ldconfig", "A || true"),
    ("A; ldconfig; B", "A; B"),
    ("A & ldconfig", "A &"),
    ("if nvidia-smi; then A; fi", "if true; then A; fi"),
    ("sh -c 'nvidia-smi && exec x' ", "sh -c 'exec x' "),
    ("echo 'a && ldconfig' && ldconfig", "echo 'a && ldconfig'"),
    ("cat <<EOF >/x\nldconfig\nEOF\nldconfig\nB", "cat <<EOF >/x\nldconfig\nEOF\nB"),
    ('X=$( cd -- "$( dirname -- "$0" )" &> /dev/null && pwd ) && ldconfig', 'X=$( cd -- "$( dirname -- "$0" )" '
     '&> /dev/null && pwd )'),
])
def test_splitter_cases(line, expect):
    assert remove_commands(line, _shim_pred).text == expect


@pytest.mark.parametrize("bad", ["echo 'unclosed", 'echo "x', "echo $(x", "(a; b"])
def test_splitter_refuses_what_it_cannot_read(bad):
    with pytest.raises(ShellSyntaxError):
        parse(bad)


# ------------------------------------------------------------------ whole apps: fly.toml's deploy-time parts

APP_DIRS = [*sorted(FIXTURES.iterdir()), EXAMPLE,
            *(sorted(p for p in CORPUS.iterdir() if (p / "fly.toml").is_file()) if CORPUS.is_dir() else [])]


@pytest.mark.parametrize("app_dir", APP_DIRS, ids=[p.name for p in APP_DIRS])
def test_app_level_auto_fixes_are_in_the_written_dockerfile(app_dir: Path):
    from flymigrate.errors import UserError
    from flymigrate.rewrite import COMMAND, thin_dockerfile

    try:
        inp = api.load_inputs(app_dir)
    except UserError as e:  # an input the plan refuses (exit 2) has nothing to check here
        pytest.skip(f"plan refuses it: {e}")
    app, df = inp.app, inp.dockerfile
    issues = analyze(app, df, inp.scripts, uses_gpu=True)
    ctx = RewriteContext(app, "modal", "app", False)
    written = rewrite_dockerfile(df.text, ctx, uses_gpu=True, shown=df.path) if df else (
        thin_dockerfile(app.build.image, ctx) if app.build.image else None)
    lines = set((written or "").split("\n"))
    for i in issues:
        if i.kind == "files" and i.auto:
            f = next(f for f in app.files if f.where == i.where)
            assert f"COPY {f.local_path} {f.guest_path}" in lines
        if i.kind in ("cmd", "processes"):
            assert i.auto is (written is not None)
            if i.auto:
                want = [ln for ln in COMMAND.lines(app, RewriteContext(app, "modal", "app", False))
                        if ln.startswith(("CMD ", "ENTRYPOINT "))]
                assert want and all(ln in lines for ln in want), (want, written)
        if i.kind == "registry":
            assert not i.auto
    # and every script finding the plan calls automatic is gone from the rewritten script
    for rel, text in inp.scripts.items():
        out = rewrite_script(text, RewriteContext(app, "modal", "app", False), rel)
        left = {(c.rule.kind) for c in check_script(out, ctx, rel)}
        auto_kinds = {i.kind for i in issues if i.where and i.where.startswith(rel + ":") and i.auto}
        manual_kinds = {i.kind for i in issues if i.where and i.where.startswith(rel + ":") and not i.auto}
        assert not (left & (auto_kinds - manual_kinds)), (rel, out)


# ------------------------------------------------------------------ the server's own API key (rules.APP_KEY)


@pytest.mark.parametrize("text,expect", [
    ('#!/bin/sh\nexec python3 -m vllm.entrypoints.openai.api_server \\\n  --model "$M" \\\n'
     '  --api-key "$VLLM_API_KEY"\n', '#!/bin/sh\nexec python3 -m vllm.entrypoints.openai.api_server \\\n'
     '  --model "$M"\n'),
    ("vllm serve m --api-key=$K --port 8000 &\nwait\n", "vllm serve m --port 8000 &\nwait\n"),
    ("(cd /srv && exec vllm serve m --api-key k)\n", "(cd /srv && exec vllm serve m)\n"),
    ("sh -c 'vllm serve m --api-key k --port 1'\n", "sh -c 'vllm serve m --port 1'\n"),
    ("text-generation-launcher --model-id m --api-key $K\n", "text-generation-launcher --model-id m\n"),
    # not a key-checking server, or no flag: untouched
    ("myproxy --api-key k && vllm serve m\n", "myproxy --api-key k && vllm serve m\n"),
    ("vllm serve m --api-key-file /k\n", "vllm serve m --api-key-file /k\n"),
])
def test_the_app_key_flag_goes_from_key_checking_servers_only(text, expect):
    ctx = _ctx(False, AUTH)
    out = rewrite_script(text, ctx, "start.sh")
    assert out == expect
    assert rewrite_script(out, _ctx(False, AUTH), "start.sh") == out
    assert rewrite_script(text, _ctx(False), "start.sh") == text  # the rule is off unless the target turns it on
    assert not check_script(text, _ctx(False), "start.sh")
