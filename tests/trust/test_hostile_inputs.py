"""Hostile and broken inputs through the real CLI (`python -m flymigrate plan ...`): each gets a clear error
(exit 2) or a correct result (exit 0), in bounded time and memory, never a traceback, and never a write
outside the app folder and the state directory (the sandbox: app, fake HOME, state dir, TMPDIR is snapshotted).

Memory is the child's own peak RSS (VmHWM at exit, see run_measured)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import Sandbox

MiB = 1024 * 1024
FLY = '''app = "acme"
primary_region = "ord"
[build]
  image = "ghcr.io/acme/app:1"
[[vm]]
  size = "a100-40gb"
[http_service]
  internal_port = 8000
  auto_stop_machines = "stop"
  min_machines_running = 0
'''
RESULTS: list[tuple[str, float, int, int]] = []  # (case, seconds, maxrss KiB, exit) -> printed at the end


@dataclass
class Measured:
    returncode: int
    stdout: str
    stderr: str
    seconds: float
    maxrss_kib: int


_HWM_SHIM = """
import atexit, os
def _hwm():
    try:
        with open("/proc/self/status") as fh:
            kb = next(int(line.split()[1]) for line in fh if line.startswith("VmHWM:"))
        with open(os.environ["FLYMIGRATE_TRUST_HWM"], "w") as fh:
            fh.write(str(kb))
    except Exception:
        pass
atexit.register(_hwm)
"""


def run_measured(args: list[str], env: dict[str, str], cwd: Path, timeout: float = 120, label: str = "") -> Measured:
    """Peak RSS is the child's own VmHWM, written at exit by a sitecustomize shim. (wait4()/RUSAGE_CHILDREN
    maxrss would be wrong here: Linux carries the forking parent's high-water mark across exec, so a child of a
    big pytest process reports pytest's size.)"""
    out, err = cwd.parent / ".m-out", cwd.parent / ".m-err"
    shim = cwd.parent / ".m-shim"
    shim.mkdir(exist_ok=True)
    (shim / "sitecustomize.py").write_text(_HWM_SHIM)
    hwm = cwd.parent / ".m-hwm"
    hwm.unlink(missing_ok=True)
    env = dict(env, PYTHONPATH=f"{shim}{os.pathsep}{env.get('PYTHONPATH', '')}", FLYMIGRATE_TRUST_HWM=str(hwm))
    t0 = time.monotonic()
    with open(out, "wb") as fo, open(err, "wb") as fe:
        p = subprocess.Popen([sys.executable, "-m", "flymigrate", *args], env=env, cwd=str(cwd), stdout=fo,
                             stderr=fe, stdin=subprocess.DEVNULL)
        deadline = t0 + timeout
        while True:
            pid, status, ru = os.wait4(p.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                p.kill()
                os.wait4(p.pid, 0)
                raise AssertionError(f"{label or args}: still running after {timeout}s")
            time.sleep(0.02)
    p.returncode = os.waitstatus_to_exitcode(status)
    secs = time.monotonic() - t0
    peak = int(hwm.read_text()) if hwm.exists() else ru.ru_maxrss
    m = Measured(p.returncode, out.read_text("utf-8", "replace"), err.read_text("utf-8", "replace"), secs, peak)
    out.unlink()
    err.unlink()
    hwm.unlink(missing_ok=True)
    shutil.rmtree(shim, ignore_errors=True)
    RESULTS.append((label or " ".join(args[:2]), secs, m.maxrss_kib, m.returncode))
    return m


def check(m: Measured, *, codes: tuple[int, ...] = (0, 2), max_mib: int = 250, max_s: float = 60) -> None:
    assert "Traceback" not in m.stderr and "Traceback" not in m.stdout, m.stderr[-2000:]
    assert m.returncode in codes, (m.returncode, m.stderr[-2000:])
    if m.returncode == 2:
        assert m.stderr.startswith("flymigrate: error: ") and len(m.stderr) < 2000, m.stderr[:2000]
    assert m.maxrss_kib < max_mib * 1024, f"peak RSS {m.maxrss_kib // 1024} MiB"
    assert m.seconds < max_s, f"{m.seconds:.1f}s"


@pytest.fixture
def app(sandbox: Sandbox) -> Path:
    (sandbox.app / "fly.toml").write_text(FLY)
    return sandbox.app


def plan(sandbox: Sandbox, *extra: str, label: str = "", timeout: float = 120) -> Measured:
    return run_measured(["plan", str(sandbox.app), "--to", "modal", *extra], sandbox.env, sandbox.app, timeout,
                        label)


def assert_no_writes(sandbox: Sandbox, before: dict, allowed: tuple[str, ...] = ()) -> None:  # type: ignore[type-arg]
    changed = [c for c in sandbox.changes(before) if not any(c[2:].startswith(a) for a in allowed)]
    changed = [c for c in changed if not c[2:].startswith((".m-out", ".m-err", ".m-shim", ".m-hwm"))]
    assert not changed, changed


# ------------------------------------------------------------------------------------------------ fly.toml
def _fly_cases() -> dict[str, bytes]:
    base = FLY.encode()
    return {
        "empty": b"",
        "binary": os.urandom(4096),
        "elf": b"\x7fELF\x02\x01\x01\x00" + os.urandom(2000),
        "utf16-bom": FLY.encode("utf-16"),
        "utf16be-bom": b"\xfe\xff" + FLY.encode("utf-16-be"),
        "utf16-no-bom": FLY.encode("utf-16-le"),
        "utf16-odd": b"\xff\xfe" + FLY.encode("utf-16-le")[:-1],
        "utf8-bom": b"\xef\xbb\xbf" + base,
        "crlf": base.replace(b"\n", b"\r\n"),
        "cr-only": base.replace(b"\n", b"\r"),
        "latin1": base.replace(b'"acme"', b'"acm\xe9"'),
        "nested-arrays": b"x = " + b"[" * 100_000 + b"]" * 100_000 + b"\n" + base,
        "nested-tables": b"x = " + b"{a=" * 50_000 + b"1" + b"}" * 50_000 + b"\n",
        "dotted-key-deep": b".".join([b"k"] * 20_000) + b" = 1\n",
        "table-header-deep": b"[" + b".".join([b"t"] * 20_000) + b"]\n",
        "many-services": base + b"".join(b"[[services]]\ninternal_port = %d\n" % i for i in range(20_000)),
        "huge-string": base + b'big = "' + b"a" * (3 * MiB) + b'"\n',
        "huge": base + b"# " + b"x" * (5 * MiB) + b"\n",
        "long-line": b"app = \"" + b"a" * 100_000 + b"\"\n",
        "nul-inside": base.replace(b"ord", b"o\x00d"),
        "unterminated": base + b'x = """never closed\n',
        "dup-keys": base + b'app = "other"\n',
        "wrong-types": b'app = 5\n[[vm]]\nsize = ["a"]\nmemory = {a=1}\n[http_service]\ninternal_port = "x"\n',
        "yaml-bomb-as-toml": b'a: &a ["x","x"]\nb: &b [*a,*a]\n',
        "surrogates": base + b'x = "\xed\xa0\x80"\n',
    }


@pytest.mark.parametrize("case", list(_fly_cases()))
def test_broken_fly_toml(sandbox: Sandbox, app: Path, case: str) -> None:
    (app / "fly.toml").write_bytes(_fly_cases()[case])
    before = sandbox.snap()
    m = plan(sandbox, label=f"fly.toml:{case}")
    check(m)
    assert_no_writes(sandbox, before)
    if case in ("utf16-bom", "utf16be-bom", "utf8-bom", "crlf"):
        assert m.returncode == 0, m.stderr  # a correct result: these are fine files in another dress
        assert "acme" in m.stdout


@pytest.mark.parametrize("suffix,data", [
    ("json", b"[" * 200_000 + b"]" * 200_000),
    ("json", b'{"app": "acme", "vm": [{"size": "a100-40gb"}]}'),
    ("yaml", (b"a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
              b"c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
              b"e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
              b"g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]\nh: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]\n")),
    ("yaml", b"- " * 50_000 + b"x\n"),
    ("yaml", b"!!python/object/apply:os.system ['touch /tmp/flymigrate-pwned']\n"),
], ids=["json-deep", "json-ok", "yaml-billion-laughs", "yaml-deep", "yaml-python-tag"])
def test_broken_fly_json_and_yaml(sandbox: Sandbox, app: Path, suffix: str, data: bytes) -> None:
    (app / f"fly.{suffix}").write_bytes(data)
    before = sandbox.snap()
    m = plan(sandbox, "--config", str(app / f"fly.{suffix}"), label=f"fly.{suffix}:{data[:12]!r}")
    check(m)
    assert_no_writes(sandbox, before)
    assert not os.path.exists("/tmp/flymigrate-pwned")


@pytest.mark.parametrize("kind", ["dev-zero", "dev-urandom", "fifo", "dir", "symlink-loop", "dangling",
                                  "unreadable", "link-to-dev-zero"])
def test_fly_toml_that_is_not_a_file(sandbox: Sandbox, app: Path, kind: str) -> None:
    cfg = app / "fly.toml"
    cfg.unlink()
    if kind == "dev-zero":
        cfg = Path("/dev/zero")
    elif kind == "dev-urandom":
        cfg = Path("/dev/urandom")
    elif kind == "fifo":
        os.mkfifo(cfg)
    elif kind == "dir":
        cfg.mkdir()
    elif kind == "symlink-loop":
        cfg.symlink_to(app / "fly.toml")
    elif kind == "dangling":
        cfg.symlink_to(app / "nowhere.toml")
    elif kind == "unreadable":
        cfg.write_text(FLY)
        cfg.chmod(0)
        if os.geteuid() == 0:
            pytest.skip("root reads any file")
    elif kind == "link-to-dev-zero":
        cfg.symlink_to("/dev/zero")
    before = sandbox.snap()
    m = plan(sandbox, "--config", str(cfg), label=f"config:{kind}", timeout=60)
    check(m, codes=(2,), max_s=30)
    assert_no_writes(sandbox, before)


@pytest.mark.parametrize("kind,needle", [("symlink-loop", "symbolic link loop"), ("dangling", "dangling link"),
                                         ("empty", "the file is empty"), ("comments", "only comments"),
                                         ("dup-app", "`app` is set twice")])
def test_fly_toml_found_in_the_app_folder_that_is_broken(sandbox: Sandbox, app: Path, kind: str, needle: str) -> None:
    """The same shapes without --config (issue 16): each is named for what it is, exit 2, nothing written."""
    cfg = app / "fly.toml"
    cfg.unlink()
    if kind == "symlink-loop":
        cfg.symlink_to("fly.toml")
    elif kind == "dangling":
        cfg.symlink_to("gone/fly.toml")
    elif kind == "empty":
        cfg.write_bytes(b"")
    elif kind == "comments":
        cfg.write_text("# app = 'x'\n\n   # nothing else\n")
    else:
        cfg.write_text('app = "again"\n' + FLY)  # twice in the top-level table
    before = sandbox.snap()
    m = plan(sandbox, label=f"app-dir:{kind}", timeout=60)
    check(m, codes=(2,), max_s=30)
    assert needle in m.stderr, m.stderr
    assert_no_writes(sandbox, before)


# ------------------------------------------------------------------------------------------------ secrets
@pytest.mark.parametrize("kind", ["sparse-200MB", "dev-zero", "fifo", "dir", "binary", "utf16", "latin1",
                                  "crlf-bom", "one-huge-line", "many-lines", "50k-lines", "json-1M",
                                  "16MB-lines", "nul-env"])
def test_hostile_secrets_files(sandbox: Sandbox, app: Path, kind: str) -> None:
    p = sandbox.root / "secrets.env"
    if kind == "sparse-200MB":
        with open(p, "wb") as fh:
            fh.truncate(200 * MiB)  # sparse: instant, takes no disk
    elif kind == "dev-zero":
        p = Path("/dev/zero")
    elif kind == "fifo":
        os.mkfifo(p)
    elif kind == "dir":
        p.mkdir()
    elif kind == "binary":
        p.write_bytes(os.urandom(10_000))
    elif kind == "utf16":
        p.write_bytes("HF_TOKEN=hf_abcdefgh\nK='v #x'\n".encode("utf-16"))
    elif kind == "latin1":
        p.write_bytes(b"K=caf\xe9\n")
    elif kind == "crlf-bom":
        p.write_bytes(b"\xef\xbb\xbfHF_TOKEN=hf_abcdefgh\r\nK=v\r\n")
    elif kind == "one-huge-line":
        p.write_bytes(b"K=" + b"v" * (12 * MiB) + b"\n")
    elif kind == "many-lines":
        p.write_bytes(b"".join(b"K%d=value%d\n" % (i, i) for i in range(300_000)))
    elif kind == "50k-lines":
        p.write_bytes(b"".join(b"K%d=value%d\n" % (i, i) for i in range(49_000)))
    elif kind == "16MB-lines":  # just under the size cap: 1.6 M entries (took 2.3 GB and 20 s before the line cap)
        p.write_bytes(b"".join(b"K%d=v\n" % i for i in range(1_600_000)))
    elif kind == "json-1M":
        p.write_bytes(b"[" + b",".join(b'{"Name":"K%d"}' % i for i in range(1_000_000)) + b"]")
    elif kind == "nul-env":
        p.write_bytes(b"PATH=/bin\x00FLY_APP_NAME=acme\x00HOME=/root\x00K=v\x00")
    if p.exists() and p.is_file() and not str(p).startswith("/dev"):
        p.chmod(0o600)
    before = sandbox.snap()
    m = plan(sandbox, "--secrets", str(p), label=f"secrets:{kind}", timeout=90)
    check(m, max_s=45)
    assert_no_writes(sandbox, before)
    if kind in ("utf16", "crlf-bom", "nul-env", "50k-lines"):
        assert m.returncode == 0, m.stderr
    if kind in ("sparse-200MB", "dev-zero", "fifo", "dir", "binary", "many-lines", "16MB-lines", "json-1M"):
        assert m.returncode == 2


# ------------------------------------------------------------------------------------------------ client code
def test_million_line_source_and_links(sandbox: Sandbox, app: Path, tmp_path: Path) -> None:
    code = app / "client"
    code.mkdir()
    line = b"    r = post(url, p)  # x\n"  # 27 bytes: 27 MB, under the scanner's 32 MiB per-file cap
    with open(code / "big.py", "wb") as fh:
        chunk = line * 10_000
        fh.writelines(chunk for _ in range(100))
        fh.write(b'URL = "https://acme.fly.dev/v1"\n')
    with open(code / "huge-generated.py", "wb") as fh:  # over the cap: skipped with a finding, not read
        fh.write(b'U = "https://acme.fly.dev"\n')
        fh.truncate(40 * MiB)
    (code / "one-line.js").write_bytes(b"var u='https://acme.fly.dev';" + b"x=1;" * (2 * MiB) + b"\n")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.py").write_text('U = "https://acme.fly.dev/outside"\n')
    (code / "to-outside.py").symlink_to(outside / "secret.py")
    (code / "dir-outside").symlink_to(outside)
    (code / "loop").symlink_to(code)
    (code / "self-loop").symlink_to(code / "self-loop")
    (code / "dangling.py").symlink_to(code / "nope.py")
    (code / "abs-etc").symlink_to("/etc")
    (code / "dev-zero.py").symlink_to("/dev/zero")
    os.mkfifo(code / "pipe.py")
    (code / "inside-link.py").symlink_to(code / "big.py")
    before = sandbox.snap()
    m = run_measured(["plan", str(app), "--to", "modal", "--format", "json", "--code", str(code)], sandbox.env, app,
                     label="1M-line file + links")
    check(m, codes=(0,), max_mib=300, max_s=60)
    assert_no_writes(sandbox, before)
    import json

    urls = json.loads(m.stdout)["base_urls"]
    paths = sorted({u["path"] for u in urls})
    assert any(p.endswith("big.py") for p in paths), paths
    assert any(p.endswith("one-line.js") for p in paths), paths
    assert not any("outside" in p or "secret" in p for p in paths), paths
    assert not any("huge-generated" in p for p in paths)
    assert any(f["code"] == "scan-skipped-large" for f in json.loads(m.stdout)["findings"])
    big = [u for u in urls if u["path"].endswith("big.py") or u["path"].endswith("inside-link.py")]
    assert len(big) == 1 and big[0]["line"] == 1_000_001, big  # found once (deduped by inode), right line


@pytest.fixture(scope="module")
def big_tree(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    import tempfile

    # on tmpfs when there is one: 200k files on the shared disk took ~60 s to create, on /dev/shm a few
    base = Path(tempfile.mkdtemp(prefix="fm-trust-tree-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None))
    root = base / "client"
    t0 = time.monotonic()
    n = 0
    for d in range(400):
        sub = root / f"pkg{d:03d}" / "mod"
        sub.mkdir(parents=True)
        sp = str(sub)
        for f in range(500):
            fd = os.open(f"{sp}/m{f:03d}.py", os.O_WRONLY | os.O_CREAT, 0o644)
            os.write(fd, b"x = 1\n" if f else b'URL = "http://acme.flycast:8000/p"\n')
            os.close(fd)
            n += 1
    assert n == 200_000
    print(f"generated {n} files in {time.monotonic() - t0:.1f}s")
    yield root
    shutil.rmtree(base, ignore_errors=True)


def test_200k_file_client_tree(sandbox: Sandbox, app: Path, big_tree: Path) -> None:
    before = sandbox.snap()
    m = run_measured(["plan", str(app), "--to", "runpod", "--format", "json", "--code", str(big_tree)], sandbox.env,
                     app, label="200k-file tree", timeout=180)
    check(m, codes=(0,), max_mib=300, max_s=90)
    assert_no_writes(sandbox, before)
    import json

    assert len(json.loads(m.stdout)["base_urls"]) == 400


def test_report_sizes(capsys: pytest.CaptureFixture[str]) -> None:
    """Not a check: prints the measured time / peak RSS of every case above (seen with -s or in the log)."""
    with capsys.disabled():
        for case, secs, rss, code in sorted(RESULTS, key=lambda r: -r[1])[:15]:
            print(f"  {case[:50]:50} exit {code:3}  {secs:6.2f}s  {rss // 1024:5} MiB")


# ------------------------------------------------------------------------------------------------ Dockerfile
FLY_DF = FLY.replace('  image = "ghcr.io/acme/app:1"', '  dockerfile = "{df}"')


@pytest.mark.parametrize("kind", ["abs-dev-zero", "rel-dev-zero", "link-dev-zero", "fifo", "binary", "utf16",
                                  "huge", "continuations", "long-line", "dir", "missing", "deep-heredoc"])
def test_hostile_dockerfiles(sandbox: Sandbox, app: Path, kind: str) -> None:
    df = "Dockerfile"
    p = app / "Dockerfile"
    if kind == "abs-dev-zero":
        df = "/dev/zero"
    elif kind == "rel-dev-zero":
        df = "../" * 30 + "dev/zero"
    elif kind == "link-dev-zero":
        p.symlink_to("/dev/zero")
    elif kind == "fifo":
        os.mkfifo(p)
    elif kind == "binary":
        p.write_bytes(os.urandom(5000))
    elif kind == "utf16":
        p.write_bytes("FROM python:3.11\r\nCMD [\"python\", \"app.py\"]\r\n".encode("utf-16"))
    elif kind == "huge":
        with open(p, "wb") as fh:
            fh.write(b"FROM python:3.11\n")
            fh.truncate(100 * MiB)
    elif kind == "continuations":
        p.write_bytes(b"FROM python:3.11\nRUN " + b"echo x \\\n" * 200_000 + b"true\n")
    elif kind == "long-line":
        p.write_bytes(b"FROM python:3.11\nENV " + b" ".join(b"K%d=v" % i for i in range(100_000)) + b"\n")
    elif kind == "dir":
        p.mkdir()
    elif kind == "deep-heredoc":
        p.write_bytes(b"FROM python:3.11\nRUN <<EOF\n" + b"echo hi\n" * 100_000 + b"\n")
    (app / "fly.toml").write_text(FLY_DF.format(df=df))
    before = sandbox.snap()
    m = plan(sandbox, label=f"Dockerfile:{kind}", timeout=60)
    check(m, max_s=30)
    assert_no_writes(sandbox, before)
    if kind in ("utf16", "continuations", "long-line", "deep-heredoc"):
        assert m.returncode == 0, m.stderr


# ------------------------------------------------------------------------------------------------ apply + links
def test_apply_never_writes_through_links_out_of_the_app(sandbox: Sandbox, example_app: Path) -> None:
    """A cloned repo may hold symlinks: client files, the Dockerfile, start.sh, even .flymigrate itself pointing
    outside. apply must not write outside the app folder (and the state dir)."""
    outside = sandbox.root / "outside"
    outside.mkdir()
    (outside / "ext.py").write_text('U = "http://acme-chat.flycast:8000/v1"\n')
    (example_app / "client" / "ext.py").symlink_to(outside / "ext.py")
    (example_app / "client" / "outdir").symlink_to(outside)
    (example_app / "client" / "a_link.py").symlink_to("chat.py")
    for name in ("Dockerfile", "start.sh"):
        shutil.move(example_app / name, outside / name)
        (example_app / name).symlink_to(outside / name)
    elsewhere = sandbox.root / "elsewhere"
    elsewhere.mkdir()
    args = ["apply", str(example_app), "--to", "cloudrun", "--yes", "--skip", "weights", "--skip", "secrets",
            "--base-url", "https://new.example.com"]
    snap_out = {p: p.read_bytes() for p in outside.iterdir()}
    # 1. .flymigrate -> elsewhere: refused, nothing written anywhere
    (example_app / ".flymigrate").symlink_to(elsewhere)
    m = run_measured(args, sandbox.env, example_app, label="apply .flymigrate link")
    check(m, codes=(2,))
    assert "symlink" in m.stderr and not list(elsewhere.iterdir())
    (example_app / ".flymigrate").unlink()
    # 2. links to outside files: never written through
    m = run_measured(args, sandbox.env, example_app, label="apply with outside links")
    check(m, codes=(0,))
    assert {p: p.read_bytes() for p in outside.iterdir()} == snap_out
    assert (example_app / "client" / "a_link.py").is_symlink()
    assert not list(elsewhere.iterdir())


def test_a_log_full_of_the_apps_url_stays_bounded(sandbox: Sandbox, app: Path) -> None:
    """An access log with the host on every line (1 M hits in 32 MB), and 30 files x 800 hits: the report lists a
    bounded number and says so (1 M hits took 2.5 GB, 16 s and a 329 MB JSON report)."""
    logs = app / "a-logs"  # walked first
    logs.mkdir()
    (logs / "access.log").write_bytes(b"GET https://acme.fly.dev/v1 200\n" * 1_000_000)
    many = app / "client"
    many.mkdir()
    for i in range(30):
        (many / f"m{i}.py").write_bytes(b'u = "http://acme.flycast:80"\n' * 800)
    before = sandbox.snap()
    m = run_measured(["plan", str(app), "--to", "modal", "--format", "json"], sandbox.env, app, label="1M-hit log")
    check(m, codes=(0,), max_mib=200, max_s=30)
    assert_no_writes(sandbox, before)
    import json

    rep = json.loads(m.stdout)
    assert len(rep["base_urls"]) <= 20_000 and len(m.stdout) < 20 * MiB
    codes = {f["code"] for f in rep["findings"]}
    assert "scan-many-hits" in codes and "scan-truncated" in codes, codes


def test_apply_rewrites_a_log_full_of_the_url_in_bounded_time(sandbox: Sandbox, example_app: Path) -> None:
    """apply rewrites every occurrence (unlike the plan's bounded listing): 300k hits in one 10 MB file."""
    log = example_app / "logs" / "access.log"
    log.parent.mkdir()
    original = b"GET http://acme-chat.flycast:8000/v1 200\n" * 300_000
    log.write_bytes(original)
    m = run_measured(["apply", str(example_app), "--to", "cloudrun", "--yes", "--only", "base_urls", "--base-url",
                      "https://new.example.com"], sandbox.env, example_app, label="apply 300k-hit log", timeout=120)
    check(m, codes=(0,), max_mib=400, max_s=60)
    assert log.read_bytes() == b"GET https://new.example.com/v1 200\n" * 300_000
    assert (example_app / ".flymigrate" / "backup" / "logs" / "access.log").read_bytes() == original
    assert len(m.stderr) < 20_000  # the auth note lists a few places, not 300k


@pytest.mark.parametrize("out", ["/dev/null", "file"])
def test_apply_out_that_is_not_a_folder(sandbox: Sandbox, example_app: Path, out: str) -> None:
    target = out if out.startswith("/") else str(sandbox.root / out)
    if out == "file":
        Path(target).write_text("keep me")
    before = sandbox.snap()
    m = run_measured(["apply", str(example_app), "--to", "cloudrun", "--yes", "--skip", "weights", "--out", target],
                     sandbox.env, example_app, label=f"apply --out {out}")
    check(m, codes=(2,))
    assert_no_writes(sandbox, before)


@pytest.mark.parametrize("url", ["https://x.example.com\nenv:\n- name: EVIL", "https://x.example.com/\"+evil()+\"",
                                 "https://x.example.com/ a", "https://x.example.com\\..\\", "https://x.example.com\x1b[2J"])
@pytest.mark.parametrize("cmd", ["plan", "apply"])
def test_base_url_that_would_inject_into_code_is_refused(sandbox: Sandbox, example_app: Path, url: str,
                                                         cmd: str) -> None:
    extra = ["--yes", "--skip", "weights", "--skip", "secrets"] if cmd == "apply" else []
    before = sandbox.snap()
    m = run_measured([cmd, str(example_app), "--to", "cloudrun", *extra, "--base-url", url], sandbox.env, example_app,
                     label=f"{cmd} --base-url")
    check(m, codes=(2,))
    assert "--base-url" in m.stderr
    assert_no_writes(sandbox, before)
