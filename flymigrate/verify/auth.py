"""Which headers a request to the migrated endpoint needs, from the secrets export and the environment.

Values are kept as :class:`~flymigrate.model.SecretValue` (never printed, registered with
:mod:`flymigrate.redact`) and revealed only when the HTTP client writes the request. What the report
shows is :meth:`Auth.describe`: header names and where each value came from, never a value.

Platform facts:

* RunPod load-balancing endpoints take the RunPod API key as ``Authorization: Bearer <key>``
  (docs.runpod.io/serverless/load-balancing/overview; runpod-workers/worker-load-balancing README). An
  app that checks its own key in the same header (vLLM's ``--api-key`` / ``VLLM_API_KEY``) collides
  with it (research/platforms-2026.md); verify says so instead of guessing.
* Modal proxy auth: the token id and secret go in the ``Modal-Key`` and ``Modal-Secret`` headers
  (modal.com/docs/guide/webhook-proxy-auth). Modal defines no environment variable names for them (its
  docs use ``TOKEN_ID``/``TOKEN_SECRET`` in a shell example); the names used in the wild are
  ``MODAL_PROXY_TOKEN_ID``/``MODAL_PROXY_TOKEN_SECRET`` and ``MODAL_KEY``/``MODAL_SECRET`` (both read,
  in that order). ``MODAL_TOKEN_ID``/``MODAL_TOKEN_SECRET`` are the account's API token (``ak-``/``as-``),
  not a proxy-auth token (``wk-``/``ws-``), and are never sent.
* Cloud Run: a private service needs a Google-signed identity token. ``X-Serverless-Authorization``
  carries it and leaves ``Authorization`` to the app; when both are present Cloud Run checks
  ``X-Serverless-Authorization`` (cloud.google.com/run/docs/authenticating/service-to-service;
  GoogleCloudPlatform/cloud-run-proxy PR #25). So the token goes in ``Authorization`` when the app has
  no key of its own, else in ``X-Serverless-Authorization``. Sources: ``--id-token``, then
  ``gcloud auth print-identity-token`` when gcloud is installed, then Application Default Credentials
  through google-auth when ``GOOGLE_APPLICATION_CREDENTIALS`` names a key file.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import UserError
from ..model import SecretsExport, SecretValue

from ..deployment import APP_KEY_NAMES  # noqa: E402  (one list: what clients send is what verify sends)
APP_KEY_FROM_ENV = ("VLLM_API_KEY", "FLYMIGRATE_APP_API_KEY")  # OPENAI_API_KEY in a shell is usually OpenAI's own


def _label(target: str) -> str:
    from ..targets import get_target, is_target

    return get_target(target).label if is_target(target) else target


def _spec(target: str):  # type: ignore[no-untyped-def]
    """The target's verify facts (auth scheme, health route...), from the target registry."""
    from ..targets import get_target, is_target
    from ..targets.base import VerifySpec

    return get_target(target).verify_spec if is_target(target) else VerifySpec()


@dataclass
class Auth:
    target: str
    _headers: dict[str, SecretValue] = field(default_factory=dict)
    sources: list[str] = field(default_factory=list)  # "Authorization: RUNPOD_API_KEY (environment)"
    notes: list[str] = field(default_factory=list)
    app_key_needed: bool = False  # the app has a key (a name in the export) that verify has no value for

    def headers(self) -> dict[str, str]:
        return {k: v.reveal() for k, v in self._headers.items()}

    def set(self, header: str, value: str, source: str, *, bearer: bool = False) -> None:
        self._headers[header] = SecretValue(f"Bearer {value}" if bearer else value)
        SecretValue(value)  # the bare value too, so redact() scrubs it wherever it might be echoed
        self.sources.append(f"{header}: {source}")

    def describe(self) -> str:
        return "; ".join(self.sources) if self.sources else "no credentials sent"


def _lookup(names: tuple[str, ...], export: SecretsExport | None, env: Mapping[str, str],
            env_names: tuple[str, ...] | None = None) -> tuple[str, str, str] | None:
    """(name, value, where) of the first name with a value: the app's export first, then the environment."""
    if export is not None:
        by_name = {s.name: s for s in export.secrets}
        for n in names:
            s = by_name.get(n)
            if s is not None and s.value is not None and s.value.reveal():
                return n, s.value.reveal(), f"{n} from {export.path or 'the secrets export'}"
    for n in env_names if env_names is not None else names:
        v = env.get(n)
        if v:
            return n, v, f"{n} from the environment"
    return None


def build_auth(target: str, export: SecretsExport | None, *, id_token: str | None = None,
               url: str = "", env: Mapping[str, str] | None = None, allow_gcloud: bool = True) -> Auth:
    env = os.environ if env is None else env
    auth = Auth(target)
    app_key = _lookup(APP_KEY_NAMES, export, env, APP_KEY_FROM_ENV)
    if app_key is None and export is not None:
        named = [s.name for s in export.secrets if s.name in APP_KEY_NAMES and s.value is None]
        if named:
            auth.app_key_needed = True
            auth.notes.append(f"the app has a key ({named[0]}) but its value was not exported: give an export with "
                              f"its value (--secrets) or set {named[0] if named[0] in APP_KEY_FROM_ENV else 'VLLM_API_KEY'} "
                              "in the environment")
    spec = _spec(target)
    if spec.auth == "platform-bearer":
        rp = _lookup(spec.key_env, None, env)
        if rp is None:
            auth.notes.append(f"{' / '.join(spec.key_env)} is not set: the endpoint answers 401 without it")
        else:
            auth.set("Authorization", rp[1], rp[2], bearer=True)
        if app_key is not None:
            label = _label(target)
            auth.notes.append(f"the app checks its own key ({app_key[0]}) in Authorization, which {label} uses "
                              f"for its API key: the app key is not sent; remove the app's key check or move it "
                              "to another header")
        return auth
    if spec.auth == "header-pair":
        for id_name, secret_name in spec.pair_env:
            kid = _lookup((id_name,), export, env)
            ksec = _lookup((secret_name,), export, env)
            if kid and ksec:
                auth.set(spec.pair_headers[0], kid[1], kid[2])
                auth.set(spec.pair_headers[1], ksec[1], ksec[2])
                break
        if app_key is not None:
            auth.set("Authorization", app_key[1], app_key[2], bearer=True)
        return auth
    if spec.auth == "identity-token":
        tok, where = _identity_token(id_token, url, env, allow_gcloud)
        if app_key is not None:
            auth.set("Authorization", app_key[1], app_key[2], bearer=True)
        if tok:
            auth.set("X-Serverless-Authorization" if app_key is not None else "Authorization", tok, where,
                     bearer=True)
        else:
            auth.notes.append(where)
        return auth
    if app_key is not None:
        auth.set("Authorization", app_key[1], app_key[2], bearer=True)
    return auth


def read_id_token_arg(value: str) -> str:
    """``--id-token TOKEN``, ``--id-token @FILE`` or ``--id-token -`` (stdin): the last two keep it out of argv."""
    if value == "-":
        tok = sys.stdin.readline().strip()
        where = "stdin"
    elif value.startswith("@"):
        p = Path(value[1:])
        try:
            tok = p.read_text("utf-8").strip()
        except OSError as exc:
            raise UserError(f"--id-token @{p}: cannot read it ({exc.strerror}).") from None
        where = str(p)
    else:
        tok, where = value.strip(), "--id-token"
    if not tok or any(c.isspace() for c in tok):
        raise UserError(f"--id-token ({where}) is empty or not a single token.",
                        hint="Use the output of `gcloud auth print-identity-token`.")
    SecretValue(tok)
    return tok


def _identity_token(given: str | None, url: str, env: Mapping[str, str], allow_gcloud: bool) -> tuple[str | None, str]:
    if given:
        return given, "--id-token"
    gcloud = shutil.which("gcloud", path=env.get("PATH")) if allow_gcloud else None
    if gcloud:
        try:
            # argv holds no secret; the token comes back on stdout, never shown
            p = subprocess.run([gcloud, "auth", "print-identity-token"], capture_output=True, text=True, timeout=60,
                               stdin=subprocess.DEVNULL)
        except (OSError, subprocess.TimeoutExpired):
            p = None
        if p is not None and p.returncode == 0 and p.stdout.strip():
            tok = p.stdout.strip().splitlines()[-1].strip()
            SecretValue(tok)
            return tok, "gcloud auth print-identity-token"
    if env.get("GOOGLE_APPLICATION_CREDENTIALS"):
        try:
            import google.auth.transport.requests  # lazy: google-auth only when a key file is configured
            import google.oauth2.id_token

            audience = url.rstrip("/")
            tok = google.oauth2.id_token.fetch_id_token(google.auth.transport.requests.Request(), audience)
            SecretValue(tok)
            return tok, "Application Default Credentials"
        except Exception as exc:  # noqa: BLE001 - any failure means: no token; say which
            return None, (f"no identity token: Application Default Credentials failed ({type(exc).__name__}); "
                          "pass --id-token or log in with `gcloud auth login`")
    return None, ("no identity token (no --id-token, gcloud not logged in, no GOOGLE_APPLICATION_CREDENTIALS): "
                  "a private Cloud Run service answers 403")
