"""Golden files for every generated / rewritten file, per app and target (UPDATE_GOLDEN=1 regenerates).

Apps: the fixture apps (tests/fixtures/apps), examples/acme-chat, and the corpus (../shared/corpus, read in place:
a preview writes nothing). Output must be deterministic: no timestamps, versions or absolute paths.

The corpus apps' own files (several have no licence) must not be copied into this repository, and a rewritten
Dockerfile or script is mostly their text. So for the corpus only step statuses and a sha256 per generated file
are kept (``corpus_manifest.json``); a change is reported by file name, and the new text can be seen with
``flymigrate apply ../shared/corpus/APP --to TARGET --dry-run`` or ``api.preview``.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from flymigrate import api
from flymigrate.apply import ApplyOptions

from .conftest import CORPUS, EXAMPLE, FIXTURES

GOLDEN = Path(__file__).parent / "golden"
CORPUS_MANIFEST = Path(__file__).parent / "corpus_manifest.json"
TARGETS = ("modal", "runpod", "cloudrun")
BASE_URL = "https://new-endpoint.example.com"


def _apps() -> list[tuple[str, Path]]:
    apps = [("acme-chat", EXAMPLE)]
    if FIXTURES.is_dir():
        apps += [(f"fixture-{p.name}", p) for p in sorted(FIXTURES.iterdir()) if (p / "fly.toml").is_file()]
    if CORPUS.is_dir():
        apps += [(f"corpus-{p.name}", p) for p in sorted(CORPUS.iterdir()) if (p / "fly.toml").is_file()]
    return apps


APPS = _apps()


def _previews(app_dir: Path, target: str):
    secrets = [str(app_dir / "fly-secrets.json"), str(app_dir / "example.env")] if app_dir == EXAMPLE else None
    gpu = None
    opts = ApplyOptions(target=target, base_url=BASE_URL, volume_id="vol-test", datacenter="EU-RO-1",
                        bucket="test-bucket")
    try:
        return api.preview(app_dir, target, options=opts, secrets_paths=secrets, gpu=gpu)
    except Exception as exc:
        from flymigrate.errors import UserError

        if isinstance(exc, UserError):
            pytest.skip(f"the planner refuses this app: {exc}")
        raise


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("name,app_dir", APPS, ids=[a[0] for a in APPS])
def test_golden(name: str, app_dir: Path, target: str) -> None:
    if name.startswith("corpus-") and not CORPUS.is_dir():
        pytest.skip("corpus absent")
    previews = _previews(app_dir, target)
    got: dict[str, str] = {}
    for p in previews:
        for c in p.changes:
            got[c.rel] = c.new
        got[f"_{p.step}.status"] = p.status + "\n"
    for text in got.values():
        assert "/tmp/" not in text and "/work/" not in text
    if name.startswith("corpus-"):
        _check_corpus_manifest(f"{name[len('corpus-'):]}/{target}", got)
        return
    d = GOLDEN / name / target
    if os.environ.get("UPDATE_GOLDEN"):
        if d.exists():
            for f in d.iterdir():
                f.unlink()
        d.mkdir(parents=True, exist_ok=True)
        for rel, text in got.items():
            (d / rel.replace("/", "__")).write_text(text)
    assert d.is_dir(), f"no golden files for {name}/{target}: run with UPDATE_GOLDEN=1"
    expected = {f.name: f.read_text() for f in d.iterdir()}
    assert {k.replace("/", "__"): v for k, v in got.items()} == expected


def _check_corpus_manifest(key: str, got: dict[str, str]) -> None:
    entry = {rel: (text.strip() if rel.startswith("_") else "sha256:" + hashlib.sha256(text.encode()).hexdigest())
             for rel, text in sorted(got.items())}
    manifest = json.loads(CORPUS_MANIFEST.read_text()) if CORPUS_MANIFEST.exists() else {}
    if os.environ.get("UPDATE_GOLDEN"):
        manifest[key] = entry
        CORPUS_MANIFEST.write_text(json.dumps(dict(sorted(manifest.items())), indent=1) + "\n")
    assert key in manifest, f"no manifest entry for {key}: run with UPDATE_GOLDEN=1"
    want = manifest[key]
    changed = sorted(k for k in set(entry) | set(want) if entry.get(k) != want.get(k))
    assert not changed, (f"{key}: {', '.join(changed)} changed (statuses: "
                         f"{ {k: (want.get(k), entry.get(k)) for k in changed if k.startswith('_')} }); "
                         "see the new text with api.preview / apply --dry-run, then UPDATE_GOLDEN=1")


def test_corpus_is_covered() -> None:
    if not CORPUS.is_dir():
        pytest.skip(f"corpus absent at {CORPUS}: its golden cases are not run")
    assert sum(1 for n, _ in APPS if n.startswith("corpus-")) >= 10
