"""Base-URL scanning: every hostname form, decoys never matched, files that must be skipped."""

from __future__ import annotations

import os

import pytest

from flymigrate.scan import classify_host, find_in_text, rewrite_url, scan_paths

APP = "acme"


@pytest.mark.parametrize("text,old,kind", [
    ('u = "https://acme.fly.dev/v1?q=1"', "https://acme.fly.dev", "fly.dev"),
    ("u = http://acme.fly.dev:8080/x", "http://acme.fly.dev:8080", "fly.dev"),
    ("OLLAMA_HOST=acme.flycast", "acme.flycast", "flycast"),
    ("u = 'http://acme.flycast:80/predict'", "http://acme.flycast:80", "flycast"),
    ("u = acme.internal:11434", "acme.internal:11434", "internal"),
    ("u = http://iad.acme.internal:8000/", "http://iad.acme.internal:8000", "internal"),
    ("u = global.acme.internal", "global.acme.internal", "internal"),
    ("u = top2.nearest.of.acme.internal", "top2.nearest.of.acme.internal", "internal"),
    ("u = 148e21ea7c7089.vm.acme.internal", "148e21ea7c7089.vm.acme.internal", "internal"),
    ("u = worker.process.acme.internal:9000", "worker.process.acme.internal:9000", "internal"),
    ('u = "http://[fdaa:0:22b7:0:1::3]:80/x"', "http://[fdaa:0:22b7:0:1::3]:80", "fdaa"),
    ("ACME.FLY.DEV", "ACME.FLY.DEV", "fly.dev"),
])
def test_forms(text, old, kind):
    mine, _ = find_in_text(text, APP, "f")
    assert [(h.old, h.kind) for h in mine] == [(old, kind)]


@pytest.mark.parametrize("decoy", [
    "https://status.acme.fly.dev.example.com/",
    "https://acme-admin.fly.dev",
    "https://my-acme.fly.dev",
    "https://sub.acme.fly.dev",
    "acme.flycast.example.org",
    "acme.internal.corp.com",
    "notacme.internal",
    "acme.fly.devices.com",
    "prefix.foo.bar.acme.internal",
])
def test_decoys_are_never_this_app(decoy):
    mine, _ = find_in_text(f"x = {decoy}\n", APP, "f")
    assert mine == []


def test_other_apps_reported_separately():
    mine, others = find_in_text("a = http://llama.flycast\nb = https://acme.fly.dev\n", APP, "f")
    assert [h.old for h in mine] == ["https://acme.fly.dev"]
    assert [h.old for h in others] == ["http://llama.flycast"]


def test_line_and_column():
    mine, _ = find_in_text("\n\n   call https://acme.fly.dev/x\n", APP, "f")
    assert (mine[0].line, mine[0].column) == (3, 9)


def test_classify_without_app_name():
    assert classify_host("x.fly.dev", None) == ("fly.dev", False)
    assert classify_host("example.com", None) is None


def test_rewrite_url_keeps_form():
    assert rewrite_url("http://acme.flycast:80", "https://new.example.com/") == "https://new.example.com"
    assert rewrite_url("acme.flycast", "https://new.example.com") == "new.example.com"


def test_walk_skips_vcs_venv_node_modules_binary_and_outside_links(tmp_path):
    root = tmp_path / "app"
    (root / "src").mkdir(parents=True)
    (root / "src" / "a.py").write_text("U = 'https://acme.fly.dev'\n")
    for skip in (".git", "node_modules", ".venv", "venv2"):
        (root / skip).mkdir()
        (root / skip / "x.py").write_text("U = 'https://acme.fly.dev'\n")
    (root / "venv2" / "pyvenv.cfg").write_text("home = /usr\n")
    (root / "blob.bin").write_bytes(b"\x00\x01https://acme.fly.dev\x00")
    outside = tmp_path / "outside.py"
    outside.write_text("U = 'https://acme.fly.dev'\n")
    os.symlink(outside, root / "link-out.py")
    os.symlink(root, root / "src" / "loop")  # a directory loop
    (root / "utf16.txt").write_bytes("https://acme.fly.dev\n".encode("utf-16"))
    (root / "latin1.txt").write_bytes("caf\xe9 https://acme.fly.dev\n".encode("latin-1"))
    res = scan_paths([(root, "")], APP)
    assert sorted(h.path for h in res.hits) == ["latin1.txt", "src/a.py", "utf16.txt"]
