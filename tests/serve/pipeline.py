"""One app x target case, end to end, as a user would run it: plan, apply (weights into the target's storage
through the loopback fakes), read the storage back as the platform would mount it, then :func:`harness.run`.

The loopback fakes: the HF Hub (tests/servers/hf_hub.py) holds small fake repos; weights go through the real
``flymigrate apply`` weights step into moto (the RunPod network volume's S3 API), the GCS emulator (the Cloud
Run bucket) or the Modal fake (the Modal volume), and are read back from there, so the container sees exactly
what the transfer wrote. Secret values reach the harness the way the platform would hold them: Cloud Run's
from running the generated ``create-secrets.sh`` against a recording ``gcloud``; Modal's from the Modal fake
(apply's secrets step created them); RunPod's from flymigrate's own parser (the user enters them, or the deploy
creates them, by name).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
TESTS = HERE.parent
ROOT = TESTS.parent
for p in (str(TESTS), str(ROOT)):
    if p not in sys.path:
        sys.path.insert(0, p)

from serve import harness  # noqa: E402

FIXTURES = TESTS / "fixtures" / "apps"
APPS = ["serve-vllm-key", "serve-whisper-baked", "serve-ollama-vol", "serve-tgi", "serve-vllm-2x80"]
TARGETS = ["modal", "runpod", "cloudrun"]

# A tiny fake of each model the fixtures use (a few KB), in the layout the real repos have.
_ST = b'\x20\x00\x00\x00\x00\x00\x00\x00{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}' + bytes(8)
REPOS: dict[str, dict[str, bytes]] = {
    "harness-org/tiny-chat": {"config.json": b'{"model_type": "llama", "hidden_size": 64}\n',
                              "tokenizer.json": b'{"version": "1.0"}\n', "generation_config.json": b"{}\n",
                              "model.safetensors": _ST + bytes(4096)},
    "harness-org/big-chat": {"config.json": b'{"model_type": "llama", "hidden_size": 8192}\n',
                             "tokenizer.json": b'{"version": "1.0"}\n',
                             "model-00001-of-00002.safetensors": _ST + bytes(3000),
                             "model-00002-of-00002.safetensors": _ST + bytes(3001),
                             "model.safetensors.index.json": b'{"weight_map": {}}\n'},
    "Systran/faster-whisper-large-v3": {"config.json": b'{"alignment_heads": []}\n', "model.bin": bytes(5000),
                                        "tokenizer.json": b"{}\n", "vocabulary.json": b"[]\n",
                                        "preprocessor_config.json": b"{}\n"},
}
BASE_URLS = {"runpod": "https://h4rn3ss0ep01.api.runpod.ai", "cloudrun": "https://{app}-h4rn3ss-uc.a.run.app",
             "modal": "https://harness--flymigrate-{app}-serve.modal.run"}
VOLUME_ID, BUCKET = "h4rn3ssvol", "harness-weights"


def ollama_models(root: Path) -> None:
    """An ollama models dir (manifests + blobs) holding tinyllama:latest, as `ollama pull` leaves it."""
    layers = {"application/vnd.ollama.image.model": bytes(3000) + b"GGUF-harness",
              "application/vnd.ollama.image.template": b"{{ .Prompt }}",
              "application/vnd.ollama.image.params": b'{"stop": ["</s>"]}'}
    (root / "blobs").mkdir(parents=True, exist_ok=True)
    man: dict[str, Any] = {"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                           "layers": []}
    for mt, data in layers.items():
        h = hashlib.sha256(data).hexdigest()
        (root / "blobs" / f"sha256-{h}").write_bytes(data)
        man["layers"].append({"mediaType": mt, "digest": f"sha256:{h}", "size": len(data)})
    cfg = b'{"model_format": "gguf"}'
    h = hashlib.sha256(cfg).hexdigest()
    (root / "blobs" / f"sha256-{h}").write_bytes(cfg)
    man["config"] = {"mediaType": "application/vnd.docker.container.image.v1+json", "digest": f"sha256:{h}",
                     "size": len(cfg)}
    d = root / "manifests" / "registry.ollama.ai" / "library" / "tinyllama"
    d.mkdir(parents=True, exist_ok=True)
    (d / "latest").write_text(json.dumps(man))


# Where each fixture's weights come from when the plan cannot fetch them itself (a Fly volume: its contents,
# downloaded, stand in for `fly-volume://` which needs flyctl).
def weights_from(app: str, work: Path) -> str | None:
    if app == "serve-vllm-2x80":
        return "hf://harness-org/big-chat"  # named only in the image's CMD: the user says where it comes from
    if app == "serve-ollama-vol":
        vol = work / "fly-volume-ollama_data"
        ollama_models(vol / "ollama" / "models")
        return str(vol)
    return None


@dataclass
class Fakes:
    hub: Any
    modal: Any
    moto: Any
    gcs: Any
    home: Path
    stops: list[Any] = field(default_factory=list)
    runpod: Any = None  # a loopback fake of RunPod's REST API v2 (secrets, endpoints)

    @classmethod
    def start(cls) -> Fakes:
        from servers.gcs_emulator import GcsEmulator
        from servers.hf_hub import FakeHub
        from servers.modal_fake import ModalFake
        from servers.moto_s3 import MotoS3

        import logging

        logging.getLogger("werkzeug").setLevel(logging.ERROR)

        hub = FakeHub(REPOS).start()
        modal = ModalFake().start()
        moto = MotoS3()
        gcs = GcsEmulator(bucket=BUCKET).start()
        home = Path(tempfile.mkdtemp(prefix="serve-home-"))
        from targets.runpod_api_fake import RunPodFake

        runpod = RunPodFake()
        return cls(hub, modal, moto, gcs, home, [hub, modal, moto, gcs, runpod], runpod)

    def stop(self) -> None:
        for s in self.stops:
            try:
                s.stop()
            except Exception:  # noqa: BLE001 - best effort teardown
                pass
        shutil.rmtree(self.home, ignore_errors=True)

    def env(self, work: Path) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("AWS_", "RUNPOD_", "HF_", "MODAL_", "FLYMIGRATE_", "STORAGE_EMULATOR"))}
        env.update(self.modal.env(home=str(self.home)))
        env.update(self.gcs.env())
        env.update(FLYMIGRATE_STATE_DIR=str(work / "state"), HF_ENDPOINT=self.hub.url, HF_HUB_DISABLE_TELEMETRY="1",
                   FLYMIGRATE_BACKOFF_BASE="0.05", PYTHONPATH=str(ROOT), NO_COLOR="1",
                   RUNPOD_S3_ACCESS_KEY_ID="AKIDHARNESS", RUNPOD_S3_SECRET_ACCESS_KEY="harness-s3-secret")
        if self.runpod is not None:  # apply creates the RunPod secrets through its API, as a user's run would
            env.update(RUNPOD_API_KEY=self.runpod.key, RUNPOD_API_BASE_URL=self.runpod.url)
        return env


@dataclass
class Case:
    app: str
    target: str
    dir: Path
    plan: dict[str, Any]
    apply_rc: int
    apply_out: str
    result: harness.Result | None = None
    blocked: list[str] = field(default_factory=list)
    note: str = ""
    volumes: dict[str, Path] = field(default_factory=dict)  # what the platform mounts, as read back
    store: dict[str, str] = field(default_factory=dict)  # secret values as the platform holds them
    want: dict[str, str] = field(default_factory=dict)  # the export, as flymigrate parses it

    def rerun(self, hub_url: str | None = None) -> harness.Result:
        """Run the harness again on this case's (possibly hand-edited) files, volumes and secrets."""
        return harness.run(self.dir, self.target, volumes=self.volumes, secrets=self.store,
                           client_env_extra=self.want, hub_url=hub_url)

    @property
    def verdict(self) -> str:
        if self.blocked and (self.result is None or not self.result.serves):
            return "BLOCKED: " + "; ".join(self.blocked)
        if self.result is None:
            return "apply failed: " + self.apply_out.strip().splitlines()[-1][:200] if self.apply_out.strip() \
                else "apply failed"
        return str(self.result)


def _cli(args: list[str], env: dict[str, str], timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "flymigrate", *args], env=env, cwd=str(ROOT), capture_output=True,
                          text=True, timeout=timeout, check=False, stdin=subprocess.DEVNULL)


def secrets_file(app_dir: Path) -> Path:
    return app_dir / "harness-secrets.env"


def parsed_secrets(path: Path) -> dict[str, str]:
    """The values as flymigrate's own parser reads the export (the oracle for what must reach the platform)."""
    from flymigrate.parse.secrets import load_secrets

    exp = load_secrets(path)
    return {s.name: s.value.reveal() for s in exp.secrets if s.value is not None}


FAKE_GCLOUD_SECRETS = """#!/usr/bin/env python3
# records `gcloud secrets create|versions add ID --data-file=-` (stdin) into $GCLOUD_STORE; `describe` = exists?
import json, os, sys
store = os.environ["GCLOUD_STORE"]
data = json.load(open(store)) if os.path.exists(store) else {}
a = sys.argv[1:]
if a[:2] == ["secrets", "describe"]:
    sys.exit(0 if a[2] in data else 1)
if a[:2] == ["secrets", "create"] or a[:3] == ["secrets", "versions", "add"]:
    sid = a[2] if a[1] == "create" else a[3]
    data[sid] = sys.stdin.buffer.read().decode("utf-8", "surrogateescape")
    json.dump(data, open(store, "w"))
    sys.exit(0)
sys.exit(2)
"""


def cloudrun_secrets(app_dir: Path, export: Path, work: Path) -> tuple[dict[str, str], str]:
    script = app_dir / "create-secrets.sh"
    if not script.exists():
        return {}, ""
    bindir = work / "gcloud-bin"
    bindir.mkdir(exist_ok=True)
    (bindir / "gcloud").write_text(FAKE_GCLOUD_SECRETS)
    (bindir / "gcloud").chmod(0o755)
    store = work / "gcloud-secrets.json"
    env = dict(os.environ, PATH=f"{bindir}:{os.environ['PATH']}", GCLOUD_STORE=str(store))
    with open(export, "rb") as f:
        r = subprocess.run(["bash", str(script)], stdin=f, env=env, capture_output=True, text=True, timeout=30,
                           check=False)
    data = json.loads(store.read_text()) if store.exists() else {}
    return data, "" if r.returncode == 0 else f"create-secrets.sh exit {r.returncode}: {r.stderr.strip()[:200]}"


def readback(target: str, case_dir: Path, fakes: Fakes, vol: Path) -> dict[str, Path]:
    """Download what the transfer wrote into the target's storage, laid out as the platform mounts it."""
    out: dict[str, Path] = {}
    if target == "runpod":
        c = fakes.moto.client()
        root = vol / "runpod"
        root.mkdir(parents=True)
        for page in c.get_paginator("list_objects_v2").paginate(Bucket=VOLUME_ID):
            for o in page.get("Contents", []):
                p = root / o["Key"]
                p.parent.mkdir(parents=True, exist_ok=True)
                p.write_bytes(c.get_object(Bucket=VOLUME_ID, Key=o["Key"])["Body"].read())
        out["volume"] = root
    elif target == "cloudrun":
        root = vol / "gcs"
        root.mkdir(parents=True)
        client = fakes.gcs.client()
        for b in client.list_blobs(BUCKET):
            p = root / b.name
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(b.download_as_bytes())
        out["volume"] = root
    else:
        import re

        src = (case_dir / "modal_app.py").read_text() if (case_dir / "modal_app.py").exists() else ""
        names = set(re.findall(r"Volume\.from_name\(\s*['\"]([^'\"]+)", src))
        for name in names:
            root = vol / f"modal-{name}"
            root.mkdir(parents=True)
            try:
                files = fakes.modal.list_files(name)
            except KeyError:
                files = {}
            for path in files:
                p = root / path.lstrip("/")
                p.parent.mkdir(parents=True, exist_ok=True)
                p.write_bytes(fakes.modal.read_file(name, path))
            out[f"volume:{name}"] = root
    return out


def modal_secrets(case_dir: Path, fakes: Fakes) -> dict[str, str]:
    out = {}
    for (envname, name), _sec in list(fakes.modal.secrets.items()):
        out["modal:" + name] = json.dumps(fakes.modal.secret_values(name, envname))
    return out


def run_case(app: str, target: str, fakes: Fakes, work: Path, *, with_plan: bool = False,
             source: Path | None = None, apply_args: tuple[str, ...] = ()) -> Case:
    d = work / app
    shutil.copytree(source or FIXTURES / app, d, symlinks=True)
    env = fakes.env(work)
    export = secrets_file(d)
    if not export.exists():  # corpus apps carry no export: an empty one (the plan lists the names to supply)
        export.write_text("")
    plan: dict[str, Any] = {}
    if with_plan:  # the dry run, as JSON (the matrix shows its GPU choice); apply prints the same blocks
        pr = _cli(["plan", str(d), "--to", target, "--format", "json", "--secrets", str(export)], env)
        plan = json.loads(pr.stdout) if pr.returncode == 0 and pr.stdout.strip().startswith("{") else {}
    base = BASE_URLS[target].format(app=app)
    args = ["apply", str(d), "--to", target, "--yes", "--secrets", str(export), "--base-url", base, *apply_args]
    if (d / "fly-secrets.json").exists():
        args += ["--secrets", str(d / "fly-secrets.json")]
    src = weights_from(app, work)
    if src:
        args += ["--weights-from", src]
    if target == "runpod":
        c = fakes.moto.client()
        try:
            c.create_bucket(Bucket=VOLUME_ID)
        except Exception:  # noqa: BLE001 - exists from an earlier case
            pass
        for page in c.get_paginator("list_objects_v2").paginate(Bucket=VOLUME_ID):
            for o in page.get("Contents", []):
                c.delete_object(Bucket=VOLUME_ID, Key=o["Key"])
        args += ["--volume-id", VOLUME_ID, "--datacenter", "EU-RO-1", "--endpoint-url", fakes.moto.url,
                 "--image", f"registry.example.com/{app}:1"]
    elif target == "cloudrun":
        client = fakes.gcs.client()
        for b in list(client.list_blobs(BUCKET)):
            b.delete()
        args += ["--bucket", BUCKET, "--image", f"us-central1-docker.pkg.dev/p/r/{app}:1"]
    ar = _cli(args, env)
    note = ""
    if source is not None and ar.returncode != 0 and "flyctl" in ar.stdout + ar.stderr:
        # a corpus app whose weights are on a Fly volume (fly-volume:// needs flyctl): run without them
        ar = _cli(args + ["--skip", "weights"], env)
        note = "weights not transferred (their source is a Fly volume, which needs flyctl)"
    case = Case(app, target, d, plan, ar.returncode, ar.stdout + ar.stderr)
    case.note = note
    case.blocked = _blocked(plan, ar.stdout + ar.stderr)
    if ar.returncode not in (0,) and not any((d / f).exists() for f in ("modal_app.py", "runpod-endpoint.json",
                                                                         "service.yaml")):
        return case
    vols = readback(target, d, fakes, work / "volumes")
    if target == "modal":
        # Modal volumes are per app: clear them for the next case
        for key in list(fakes.modal.volumes):
            fakes.modal.volumes.pop(key, None)
    want = parsed_secrets(export)
    if target == "cloudrun":
        store, err = cloudrun_secrets(d, export, work)
    elif target == "modal":
        store, err = modal_secrets(d, fakes), ""
        fakes.modal.secrets.clear()
    else:
        store, err = dict(want), ""
    case.volumes, case.store, case.want = vols, store, want
    res = harness.run(d, target, volumes=vols, secrets=store, client_env_extra=want, hub_url=fakes.hub.url)
    for extra in (err, _secret_drift(d, target, store, want)):
        if extra and res.serves:
            res = harness.Result(False, extra, res.log)
        elif extra:
            res.static.append(extra)
    case.result = res
    return case


def _secret_drift(d: Path, target: str, store: dict[str, str], want: dict[str, str]) -> str:
    """A secret the platform holds must equal flymigrate's parse of the export, byte for byte."""
    if target == "cloudrun":
        import yaml

        svc = yaml.safe_load((d / "service.yaml").read_text())
        for e in svc["spec"]["template"]["spec"]["containers"][0].get("env") or []:
            ref = (e.get("valueFrom") or {}).get("secretKeyRef")
            if ref and e["name"] in want and store.get(ref["name"]) != want[e["name"]]:
                got = store.get(ref["name"])
                return (f"secret {e['name']} reaches Cloud Run altered ({len(got or '')} chars, "
                        f"{len(want[e['name']])} in the export; create-secrets.sh parses the export itself)")
    if target == "modal":
        for k, raw in store.items():
            for name, val in json.loads(raw).items():
                if name in want and want[name] != val:
                    return f"secret {name} reaches Modal altered"
    return ""


def _blocked(plan: dict[str, Any], out: str) -> list[str]:
    """Steps the plan (JSON) or apply's summary table mark blocked, with their reason."""
    out_l = []
    for line in out.splitlines():
        m = re.match(r"^\s{2}(\w+)\s+blocked\s+(.*)$", line)
        if m:
            out_l.append(f"{m.group(1)}: {m.group(2).strip()[:200]}")
    for s in plan.get("steps", []):
        if s.get("status") == "blocked":
            out_l.append(f"{s.get('id')}: {s.get('summary', '')[:160]}")
    if (plan.get("gpu") or {}).get("blocked"):
        out_l.append("gpu: " + str(plan["gpu"].get("reason", ""))[:160])
    return out_l
