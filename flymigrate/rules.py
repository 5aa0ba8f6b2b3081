"""What only made sense on Fly, as rules: each one object holding its detector and its fixer.

The plan (``dockerplan.analyze``) and the Dockerfile step (``rewrite``) read the same rules, so what the plan lists
is what apply does. A rule reports whether its fix took effect: after fixing, its detector runs again on the fixed
text, and a finding it still sees is "fix by hand", never a change (see ``check_instruction`` / ``check_script``).

Two sorts of text rule (research/fly.md sections 1.13, 2, 7):
- *removal* rules name whole commands (``ldconfig``, ``nvidia-smi``, a Fly ``/opt/nvidia/entrypoint.d`` hook, a
  weight download baked into a layer); the command goes as a whole and-or item, read with ``shell.parse`` (quotes,
  escapes, ``$(...)`` respected): a removed command counts as one that succeeded, so ``shim || fallback`` goes
  entirely and ``shim && exec X`` becomes ``exec X``;
- *substitution* rules rewrite a value in place: ``$FLY_*`` variables become explicit values, IPv6-only binds
  become ``0.0.0.0`` (one pattern table, ``IPV6_SUBS``, both detects and fixes).
The whole-file rules (no CUDA in the base image, [[files]], [experimental] cmd, [processes], registry.fly.io) are
objects here too; their fixers write whole lines (``rewrite.rewrite_dockerfile``).

Pure: no I/O.
"""

from __future__ import annotations

import bisect
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from .model import Dockerfile, FlyApp
from .parse.dockerfile import parse_dockerfile_text
from .shell import Command, ShellSyntaxError, command_words, parse, remove_commands, rewrite_andor, unquote

MARK = "# flymigrate:"
# CUDA 12.8 runs on Blackwell (sm_120: Cloud Run's RTX PRO 6000) as well as on Ampere/Ada/Hopper, with cuDNN 9 and
# cuBLAS for CUDA 12 (what faster-whisper / ctranslate2 need: faster-whisper README "GPU"); needs an R570+
# driver, or R525+ through CUDA minor-version compatibility (docs.nvidia.com/deploy/cuda-compatibility). The tag is
# used verbatim as a base by public Dockerfiles and Modal ``Image.from_registry`` calls (public code search,
# 2026-11-29); it could not be pulled here (no network).
CUDA_BASE = "nvidia/cuda:12.8.1-cudnn-runtime-ubuntu22.04"

# ------------------------------------------------------------------ detectors (patterns)

# a Fly GPU driver shim: ldconfig / nvidia-smi (any path), or removing the CUDA stub libraries
SHIM_RE = re.compile(r"(?<![\w./-])(?:[\w.-]*/)*(?:ldconfig|nvidia-smi)(?![\w.-])"
                     r"|\brm\s+(?:-[a-zA-Z]+\s+)*/usr/local/cuda/lib64/stubs\S*")
_SHIM_NAMES = frozenset({"ldconfig", "nvidia-smi"})
_STUBS_RE = re.compile(r"^/usr/local/cuda/lib64/stubs\S*$")
FLY_ENTRYPOINT_D_RE = re.compile(r"/opt/nvidia/entrypoint\.d/[^\s\"']*fly[^\s\"']*", re.I)
FLY_ENV_RE = re.compile(r"\$\{(FLY_[A-Z_]+)(?::?-[^}]*)?\}|\$(FLY_[A-Z_]+)\b")
BAKED_RE = re.compile(
    r"(huggingface-cli|hf)\s+download\s+|snapshot_download\s*\(|hf_hub_download\s*\(|\.from_pretrained\s*\("
    r"|ollama\s+(pull|run)\s+|git\s+lfs\s+pull|git\s+clone\s+\S*huggingface\.co/"
    r"|(wget|curl)\s+[^\n]*?\.(safetensors|gguf|ggml|bin|ckpt|pt|pth|onnx)\b",
    re.I,
)
# what is left of `ollama serve & sleep 5 && ollama pull X` once the pull is gone: scaffolding, dropped too
_HELPER_CMD_RE = re.compile(r"^\s*(?:\S*ollama\s+serve\b.*|sleep\s+\d+\s*|true)\s*$")

# IPv6-only binds: one table; a match is a finding, its replacement is the fix (targets route IPv4 to 0.0.0.0)
_NOT_V6_TAIL = r"(?![0-9A-Fa-f:.\]\w])"
IPV6_SUBS: tuple[tuple[re.Pattern[str], str | Callable[[re.Match[str]], str]], ...] = (
    (re.compile(r"\[(?:0{1,4}:){7}0{1,4}\]"), "0.0.0.0"),
    (re.compile(r"\[::0?\]"), "0.0.0.0"),  # [::]:8000, --host=[::], "[::]"
    (re.compile(r"fly-local-6pn"), "0.0.0.0"),
    (re.compile(r"\s*-proto_dist\s+inet6_tcp"), ""),  # Erlang distribution over IPv6
    (re.compile(r"inet6_tcp"), "inet_tcp"),
    # --host  ::  /  --bind=::  /  -b "::"
    (re.compile(r"(?<![\w-])((?:--host|--bind|--listen|--address|--addr|--ip|-b|-H)(?:\s+|=)[\"']?)::0?"
                + _NOT_V6_TAIL), r"\g<1>0.0.0.0"),
    # HOST=::  /  LIVEBOOK_IP="::"  /  BIND_ADDR = '::'
    (re.compile(r"(?<![\w])((?:[A-Za-z_][A-Za-z0-9_]*_)?(?i:HOST|IP|ADDR|ADDRESS|BIND|LISTEN)\s*=\s*[\"']?)::0?"
                + _NOT_V6_TAIL), r"\g<1>0.0.0.0"),
    # a quoted "::" on its own (exec-form argv, ENV NAME "::")
    (re.compile(r"(?<=[\s=\[,(])(?:\"::0?\"|'::0?')"), lambda m: m.group(0)[0] + "0.0.0.0" + m.group(0)[0]),
    # a bare :: on its own
    (re.compile(r"(?<=[\s=])::0?(?=[\s;,&|)]|$)"), "0.0.0.0"),
)
IPV6_RE = re.compile("|".join(f"(?:{rx.pattern})" for rx, _ in IPV6_SUBS))  # no back-references above: one union
assert IPV6_RE.groups == sum(rx.groups for rx, _ in IPV6_SUBS) and "\\1" not in IPV6_RE.pattern
_IPV6_VALUES = frozenset({"::", "::0", "[::]", "[::0]", "fly-local-6pn"})

CUDA_BASE_HINTS = ("cuda", "nvidia", "pytorch", "tensorflow", "vllm", "ollama", "tritonserver", "cudnn", "nvcr.io",
                   "runpod/", "huggingface/", "ghcr.io/ggerganov", "local-ai", "cublas", "livebook", "colab")
# installs that bring their own CUDA user space (pip wheels pull nvidia-*-cu12, ollama bundles its runtime);
# the targets inject the driver (libcuda) just as Fly did, so such images need no CUDA base image
BUNDLES_CUDA_RE = re.compile(
    r"\b(pip3?|uv\s+pip|python3?\s+-m\s+pip|poetry|conda|mamba)\b[^\n]*\b(install|add)\b[^\n]*"
    r"\b(torch|vllm|xformers|sglang|nvidia-[a-z0-9-]+-cu1\d|jax\[cuda\d*[^\]]*\]|tensorflow\[and-cuda\]|"
    r"onnxruntime-gpu|cupy-cuda\w+|openai-whisper|diffusers|sentence-transformers|"
    r"text-generation-server|tensorrt)\b"
    r"|ollama\.com/install\.sh|\bapt(-get)?\s+install[^\n]*\b(cuda-|libcublas|libcudnn|nvidia-cuda)",
    re.I,
)
CPU_BASE_RE = re.compile(r"^(docker\.io/)?(library/)?(ubuntu|debian|python|alpine|node|elixir|hexpm/elixir|"
                         r"golang|rust|buildpack-deps|fedora|amazonlinux|busybox|archlinux)(:|@|$)", re.I)


def needs_cuda_base(df: Dockerfile) -> str | None:
    """The final base image when it has no CUDA user space and nothing the Dockerfile installs brings one
    (pip CUDA wheels, ollama, apt cuda packages). One decision, used by the plan and by the rewrite."""
    images = df.base_images()
    if not images:
        return None
    image = images[-1]
    if not CPU_BASE_RE.match(image) or any(h in image.lower() for h in CUDA_BASE_HINTS):
        return None
    if any(ins.keyword == "RUN" and BUNDLES_CUDA_RE.search(ins.args) for ins in df.instructions):
        return None
    return image


# ------------------------------------------------------------------ context


@dataclass
class RewriteContext:
    """What the rewrite needs to know beyond the text itself."""

    app: FlyApp
    target: str
    app_slug: str
    drop_baked: bool  # the weights step fills the volume, so downloads baked into layers go
    mount_path: str | None = None
    runpod_mount: str | None = None  # /runpod-volume/<slug>
    notes: list[str] = field(default_factory=list)
    # the target's gateway takes its own key in Authorization, so the server's own key check goes (the reason;
    # "" = keep it). Decided once by the Deployment (``Target.app_auth_collision``), see ``APP_KEY``
    drop_app_auth: str = ""


def fly_value(name: str, ctx: RewriteContext) -> str | None:
    app = ctx.app
    table = {
        "FLY_APP_NAME": app.app or ctx.app_slug,
        "FLY_REGION": app.primary_region,
        "PRIMARY_REGION": app.primary_region,
        "FLY_MACHINE_ID": "${HOSTNAME}",
        "FLY_ALLOC_ID": "${HOSTNAME}",
        "FLY_PRIVATE_IP": "0.0.0.0",
        "FLY_PROCESS_GROUP": "app",
        "FLY_VM_MEMORY_MB": str(app.memory_mb) if app.memory_mb else None,
    }
    return table.get(name)


# ------------------------------------------------------------------ text rules


@dataclass(frozen=True)
class TextRule:
    """A rule over Dockerfile instructions and script commands: ``detect`` finds, ``fix`` (removal or
    substitution) repairs, and the same ``detect`` on the fixed text says whether the repair took."""

    kind: str
    fix_text: str  # what the plan says the fix is
    message: str  # what the plan says was found (``{what}`` is the matched text)
    pattern: re.Pattern[str]
    keywords: frozenset[str]  # Dockerfile instructions it looks at
    in_scripts: bool = True
    quick: tuple[str, ...] = ()  # every match holds one of these (lower case): a cheap test before the regex
    gated: bool = False  # only a target turns it on (``active``): when off it finds nothing, not "fix by hand"

    def detect(self, text: str) -> list[re.Match[str]]:
        if self.quick:
            low = text.lower()
            if not any(q in low for q in self.quick):
                return []
        return list(self.pattern.finditer(text))

    def active(self, ctx: RewriteContext) -> bool:
        return True

    def shown(self, m: re.Match[str]) -> str:
        """The matched text as the plan shows it."""
        return m.group(0).strip()

    # removal rules answer this; substitution rules answer substitute()
    def removes(self, cmd: Command, text: str) -> str | None:
        return None

    def substitute(self, text: str, ctx: RewriteContext, where: str) -> str:
        return text


class _Shim(TextRule):
    def removes(self, cmd: Command, text: str) -> str | None:
        seg = text[cmd.start:cmd.end]
        if not any(q in seg for q in self.quick):
            return None
        _first, ws = command_words(cmd)
        if not ws:
            return None
        name = unquote(ws[0].text).rsplit("/", 1)[-1]
        if name in _SHIM_NAMES:
            return "Fly GPU driver shim"
        if name == "rm":
            args = [unquote(w.text) for w in ws[1:] if not w.text.startswith("-")]
            if args and all(_STUBS_RE.match(a) for a in args):
                return "Fly GPU driver shim"
        return None


class _Hook(TextRule):
    def removes(self, cmd: Command, text: str) -> str | None:
        if "/opt/nvidia/entrypoint.d/" in text[cmd.start:cmd.end] and any(FLY_ENTRYPOINT_D_RE.search(w.text) for w in cmd.words):
            return "Fly-only /opt/nvidia/entrypoint.d hook"
        return None


class _Baked(TextRule):
    def active(self, ctx: RewriteContext) -> bool:
        return ctx.drop_baked

    def removes(self, cmd: Command, text: str) -> str | None:
        if cmd.words and BAKED_RE.search(text[cmd.start:cmd.end] + " "):
            return "weights baked into the image (they are on the mounted volume now)"
        return None


class _FlyEnv(TextRule):
    def substitute(self, text: str, ctx: RewriteContext, where: str) -> str:
        def sub(m: re.Match[str]) -> str:
            name = m.group(1) or m.group(2)
            val = fly_value(name, ctx)
            if val is None:
                ctx.notes.append(f"{where}: ${name} has no equivalent off Fly; set it yourself or remove its use")
                return m.group(0)
            return val

        return self.pattern.sub(sub, text)


class _Ipv6(TextRule):
    def substitute(self, text: str, ctx: RewriteContext | None = None, where: str = "") -> str:
        if not self.detect(text):
            return text
        for rx, rep in IPV6_SUBS:
            text = rx.sub(rep, text)
        return text


# Inference servers that check their own key in `Authorization: Bearer <key>` and the env variable each reads
# when the flag is absent (checked against their source):
# - vLLM: ``--api-key`` (repeatable), else ``VLLM_API_KEY``: vllm ``vllm/entrypoints/openai/api_server.py``
#   build_app ``tokens := [key for key in (args.api_key or [envs.VLLM_API_KEY]) if key]`` and
#   ``vllm/envs.py`` ``"VLLM_API_KEY": lambda: os.environ.get("VLLM_API_KEY", None)`` (vllm-project/vllm
#   048027fb; v0.6.x had ``envs.VLLM_API_KEY or args.api_key``): the AuthenticationMiddleware answers 401 on /v1
#   unless ``Authorization: Bearer <key>``.
# - TGI: ``text-generation-launcher --api-key`` (``#[clap(long, env)] api_key``, i.e. also ``API_KEY``), passed to
#   the router, which answers 401 unless ``Authorization`` is ``Bearer <key>`` (huggingface/text-generation-
#   inference db931fcf ``launcher/src/main.rs`` api_key, ``router/src/server.rs`` "if let Some(api_key)").
KEY_SERVERS: tuple[tuple[re.Pattern[str], str, str], ...] = (
    (re.compile(r"(?:^|/)vllm$|^vllm\.entrypoints\.openai\.api_server$"), "vLLM", "VLLM_API_KEY"),
    (re.compile(r"(?:^|/)text-generation-launcher$"), "TGI", "API_KEY"),
)
_KEY_SERVER_TEXT_RE = re.compile(r"\bvllm\b|text-generation-(?:launcher|inference)")
APP_KEY_RE = re.compile(r"--api-key(?![\w-])(?:=(?:\"[^\"]*\"|'[^']*'|[^\s\"',\]]*)"
                        r"|\s+(?:\"[^\"]*\"|'[^']*'|[^\s\"',\]]+)|\"\s*,\s*\"[^\"]*\")?")
_ARGS_ONLY_RE = re.compile(r'^\s*(?:(?:CMD|ENTRYPOINT)\s+)?\[\s*"-')  # exec form, arguments to the image's ENTRYPOINT
_EXEC_FORM_RE = re.compile(r"^(\s*[A-Z]+\s+)(\[.*\])(\s*)$", re.S)


def key_fallback_envs(text: str) -> tuple[tuple[str, str], ...]:
    """(server, env name) of the key-checking servers ``text`` (an image's Dockerfile, command, scripts) runs:
    the env variable each reads as its key when no ``--api-key`` is given."""
    out = []
    low = text.lower()
    if re.search(r"\bvllm\b", low):
        out.append(("vLLM", "VLLM_API_KEY"))
    if "text-generation-launcher" in low or "text-generation-inference" in low:
        out.append(("TGI", "API_KEY"))
    return tuple(out)


def _key_server(words: list[str]) -> bool:
    return any(rx.search(w) for w in words for rx, _n, _e in KEY_SERVERS)


def _drop_key_argv(argv: list[str]) -> list[str]:
    """An exec-form argv without the server's ``--api-key K`` / ``--api-key=K`` (``sh -c`` scripts too)."""
    if argv and argv[0].rsplit("/", 1)[-1] in _SHELLS:
        return [drop_key_flags(a) if k and argv[k - 1].startswith("-") and not argv[k - 1].startswith("--")
                and "c" in argv[k - 1] else a for k, a in enumerate(argv)]
    if not _key_server(argv) and not (argv and argv[0].startswith("-")):
        return argv  # (only arguments: a CMD for the image's own ENTRYPOINT, a vLLM / TGI one when this rule is on)
    out: list[str] = []
    skip = False
    for k, a in enumerate(argv):
        if skip:
            skip = False
            continue
        if a == "--api-key" and k + 1 < len(argv):
            skip = True
            continue
        if a.startswith("--api-key="):
            continue
        out.append(a)
    return out


def _simple_commands(lst):  # type: ignore[no-untyped-def]
    for it in lst.items:
        for p in it.andor.pipelines:
            for c in p.commands:
                if c.sub is not None:
                    yield from _simple_commands(c.sub)
                else:
                    yield c


def drop_key_flags(text: str) -> str:
    """Shell text (a script, a shell-form CMD) without ``--api-key K`` / ``--api-key=K`` on the commands that
    start a key-checking server (vLLM, TGI); the blanks and line continuations before the flag go with it. An
    exec-form ``CMD [...]`` / ``ENTRYPOINT [...]`` is edited as its argv. Text this reader cannot take apart is
    returned unchanged (the detector then still sees the flag: "fix by hand")."""
    if "--api-key" not in text:
        return text
    m = _EXEC_FORM_RE.match(text)
    if m:
        try:
            argv = json.loads(m.group(2))
        except ValueError:
            argv = None
        if isinstance(argv, list) and all(isinstance(a, str) for a in argv):
            new = _drop_key_argv(argv)
            return text if new == argv else m.group(1) + json.dumps(new, ensure_ascii=False) + m.group(3)
    kw = re.match(r"\s*(?:CMD|ENTRYPOINT)\s+", text)
    if kw:  # a shell-form instruction: its shell text
        return text[:kw.end()] + drop_key_flags(text[kw.end():])
    try:
        lst = parse(text)
    except ShellSyntaxError:
        return text
    from .shell import shell_script_word

    cuts: list[tuple[int, int, str]] = []
    for cmd in _simple_commands(lst):
        _first, ws = command_words(cmd)
        values = [unquote(w.text) for w in ws]
        if not _key_server(values):
            sw = shell_script_word(cmd)
            if sw is not None:
                inner = sw.text[1:-1]
                new_inner = drop_key_flags(inner)
                if new_inner != inner:
                    cuts.append((sw.start, sw.end, sw.text[0] + new_inner + sw.text[-1]))
            continue
        k = 0
        while k < len(ws):
            v = values[k]
            if v == "--api-key" and k + 1 < len(ws):
                start, end, k = ws[k].start, ws[k + 1].end, k + 2
            elif v.startswith("--api-key="):
                start, end, k = ws[k].start, ws[k].end, k + 1
            else:
                k += 1
                continue
            while start > 0 and (text[start - 1] in " \t" or text[max(0, start - 2):start] == "\\\n"):
                start -= 2 if text[start - 1] == "\n" else 1
            cuts.append((start, end, ""))
    for a, b, rep in sorted(cuts, reverse=True):
        text = text[:a] + rep + text[b:]
    return text


class _AppKey(TextRule):
    """The server checks its own API key in ``Authorization: Bearer``, the header the target's gateway takes its
    own key in (RunPod load-balancing endpoints): no request can pass both, so the server's check goes (the
    gateway's key guards the endpoint). Turned on by the target through ``ctx.drop_app_auth``."""

    def active(self, ctx: RewriteContext) -> bool:
        return bool(ctx.drop_app_auth)

    def detect(self, text: str) -> list[re.Match[str]]:
        if "--api-key" not in text:
            return []
        if not _KEY_SERVER_TEXT_RE.search(text) and not _ARGS_ONLY_RE.match(text):
            return []
        return list(self.pattern.finditer(text))

    def substitute(self, text: str, ctx: RewriteContext, where: str) -> str:
        if not self.active(ctx) or not self.detect(text):
            return text
        return drop_key_flags(text)

    def shown(self, m: re.Match[str]) -> str:
        """``--api-key "$VLLM_API_KEY"`` as written; a literal key is never shown (it is a secret)."""
        text = m.group(0).strip()
        value = re.sub(r'^--api-key(?:=|\s+|"\s*,\s*")', "", text).strip("\"' ")
        if not value or re.fullmatch(r"\$\{?[A-Za-z_][A-Za-z0-9_]*\}?", value):
            return f"--api-key {value}" if '",' in text else text
        return "--api-key <a literal key, not shown>"


_SHELL_KW = frozenset({"RUN", "CMD", "ENTRYPOINT"})
SHIM = _Shim("driver-shim", "remove the shim", "{keyword} runs a Fly GPU driver shim (`{what}`): the targets provide the "
             "NVIDIA driver themselves.", SHIM_RE, _SHELL_KW,
             quick=("ldconfig", "nvidia-smi", "/usr/local/cuda/lib64/stubs"))
HOOK = _Hook("fly-entrypoint-d", "drop it", "a Fly-specific script in /opt/nvidia/entrypoint.d/ is not needed "
             "off Fly.", FLY_ENTRYPOINT_D_RE,
             frozenset({"RUN", "CMD", "ENTRYPOINT", "COPY", "ADD", "ENV", "ARG", "LABEL", "WORKDIR", "VOLUME"}),
             quick=("/opt/nvidia/entrypoint.d/",))
FLY_ENV = _FlyEnv("fly-env", "replace with an explicit value", "uses {what}, which only Fly sets at run time.",
                  FLY_ENV_RE, frozenset({"RUN", "CMD", "ENTRYPOINT", "ENV"}), quick=("$",))
IPV6 = _Ipv6("ipv6-bind", "bind 0.0.0.0", "binds IPv6-only (`{what}`); the targets route to 0.0.0.0 (IPv4).",
             IPV6_RE, frozenset({"ENV", "CMD", "ENTRYPOINT", "RUN", "ARG"}),
             quick=("::", "0000:", "fly-local-6pn", "inet6_tcp"))
BAKED = _Baked("baked-weights", "move the download into the weights step (mounted volume) and drop it from the "
               "image", "downloads model weights into an image layer at build time: slow builds, huge images, "
               "every cold start pulls them again.", BAKED_RE, frozenset({"RUN"}), in_scripts=False,
               quick=("download", "from_pretrained", "ollama", "lfs", "huggingface.co", "wget", "curl"))

APP_KEY = _AppKey("app-auth", "drop the server's own key check: the target's API key guards the endpoint and "
                  "clients send that key instead", "uses `{what}`: the server checks its own key in "
                  "`Authorization: Bearer`, the header the target's gateway takes its API key in, so no request "
                  "could pass both.", APP_KEY_RE, frozenset({"CMD", "ENTRYPOINT"}), quick=("--api-key",),
                  gated=True)

TEXT_RULES: tuple[TextRule, ...] = (SHIM, HOOK, FLY_ENV, IPV6, BAKED, APP_KEY)  # the order the plan lists them
REMOVAL_RULES: tuple[TextRule, ...] = (SHIM, HOOK, BAKED)
SUBSTITUTION_RULES: tuple[TextRule, ...] = (FLY_ENV, IPV6, APP_KEY)


def _pred(rules: list[TextRule]):
    def pred(cmd: Command, text: str) -> str | None:
        for r in rules:
            why = r.removes(cmd, text)
            if why:
                return why
        return None

    return pred


def _all_helpers(text: str) -> bool:
    """Only scaffolding left (``ollama serve &``, ``sleep 5``) once a baked download went."""
    try:
        lst = parse(text)
    except ShellSyntaxError:
        return False
    cmds = [c for it in lst.items for p in it.andor.pipelines for c in p.commands]
    return all(c.sub is None and _HELPER_CMD_RE.match(text[c.start:c.end]) for c in cmds)


def fix_shell(text: str, ctx: RewriteContext, where: str, keyword: str | None = None) -> tuple[str | None, list[str]]:
    """A shell command line: the removal rules, then the substitutions. (new text or None if nothing is left,
    reasons for removals). Text this reader cannot take apart keeps its commands (its findings stay manual)."""
    rules = [r for r in REMOVAL_RULES if r.active(ctx) and (keyword is None and r.in_scripts or
                                                             keyword is not None and keyword in r.keywords)
             and r.detect(text)]  # no match, nothing to take apart: skip the parse
    reasons: list[str] = []
    new: str | None = text
    if rules:
        try:
            rem = remove_commands(text, _pred(rules))
        except ShellSyntaxError:
            rem = None
        if rem is not None and rem.reasons:
            reasons = rem.reasons
            new = rem.text
            if new is not None and any(r.startswith("weights") for r in reasons) and _all_helpers(new):
                new = None
    if new is not None and reasons:
        new = substitute(new, ctx, where, keyword)
    return new, reasons


def substitute(text: str, ctx: RewriteContext, where: str, keyword: str | None = None) -> str:
    for r in SUBSTITUTION_RULES:
        if keyword is None and r.in_scripts or keyword is not None and keyword in r.keywords:
            text = r.substitute(text, ctx, where)
    return text


def fix_ipv6(text: str) -> str:
    return IPV6.substitute(text)


def ipv6_env_value(value: str) -> bool:
    """An [env] value that binds IPv6 only."""
    return value.strip() in _IPV6_VALUES or bool(IPV6_RE.search(f" {value} "))


def fix_env_value(value: str) -> str:
    """An [env] value, as the target config should carry it (the same table the plan detects with)."""
    if value.strip() in _IPV6_VALUES:
        return "0.0.0.0"
    return fix_ipv6(value)


# ------------------------------------------------------------------ one Dockerfile instruction


def _what(reasons: list[str]) -> str:
    return ", ".join(sorted(set(reasons)))


_SHELLS = frozenset({"sh", "bash", "dash", "ash", "zsh", "ksh"})


def _fix_argv(argv: list[str], ctx: RewriteContext, where: str, kw: str) -> tuple[list[str] | None, list[str]]:
    """Exec form: ``["sh", "-c", "script"]`` has its script fixed; ``["nvidia-smi", ...]`` goes whole."""
    if not argv:
        return argv, []
    if argv[0].rsplit("/", 1)[-1] in _SHELLS:
        for k in range(1, len(argv) - 1):
            a = argv[k]
            if not a.startswith("-"):
                break
            if not a.startswith("--") and "c" in a:
                new, reasons = fix_shell(argv[k + 1], ctx, where, kw)
                if not reasons:
                    return argv, []
                if new is None:
                    return None, reasons
                return argv[:k + 1] + [new] + argv[k + 2:], reasons
        return argv, []
    rules = [r for r in REMOVAL_RULES if r.active(ctx) and kw in r.keywords]
    try:
        lst = parse(" ".join(_sh_quote(a) for a in argv))
        cmd = lst.items[0].andor.pipelines[0].commands[0]
        why = _pred(rules)(cmd, " ".join(_sh_quote(a) for a in argv))
    except (ShellSyntaxError, IndexError):
        why = None
    if why:
        return None, [why]
    return argv, []


def _sh_quote(a: str) -> str:
    return a if re.fullmatch(r"[\w@%+=:,./-]+", a) else "'" + a.replace("'", "'\"'\"'") + "'"


def fix_instruction(keyword: str, args: str, original: str, ctx: RewriteContext, where: str) -> list[str] | None:
    """The lines that replace one instruction (``original`` is its text as written, continuations and all), or
    None when it stays as it is."""
    kw = keyword
    if kw in ("COPY", "ADD") and FLY_ENTRYPOINT_D_RE.search(args):
        return [f"{MARK} removed a Fly-only /opt/nvidia/entrypoint.d hook: {kw} {args}"]
    if kw in _SHELL_KW:
        stripped = args.lstrip()
        if stripped.startswith("["):
            try:
                argv = json.loads(stripped)
            except ValueError:
                argv = None
            if isinstance(argv, list) and all(isinstance(a, str) for a in argv):
                new_argv, reasons = _fix_argv(argv, ctx, where, kw)
                if reasons:
                    if new_argv is None:
                        return [f"{MARK} removed ({_what(reasons)}): {kw} {args}"]
                    line = f"{kw} {json.dumps(new_argv, ensure_ascii=False)}"
                    return [f"{MARK} removed ({_what(reasons)}) from: {kw} {args}",
                            substitute(line, ctx, where, kw)]
        elif "\n" in args:  # RUN <<EOF ... EOF: the body is a script
            lines = original.split("\n")
            if len(lines) >= 3:
                head, body, tail = lines[0], "\n".join(lines[1:-1]), lines[-1]
                new_body = fix_script(body, ctx, where, keyword=kw)
                new_head = substitute(head, ctx, where, kw)
                if new_body != body or new_head != head:
                    return [new_head] + new_body.split("\n") + [tail]
            return None
        else:
            new, reasons = fix_shell(args, ctx, where, kw)
            if reasons:
                if new is None:
                    return [f"{MARK} removed ({_what(reasons)}): {kw} {args}"]
                return [f"{MARK} removed ({_what(reasons)}) from: {kw} {args}", f"{kw} {new}"]
    fixed = substitute(original, ctx, where, kw)
    if fixed == original:
        return None
    if any(r.detect(_args_of(fixed)) for r in SUBSTITUTION_RULES if kw in r.keywords) and "\n" in original:
        # a value split over continuation lines: fix the joined instruction instead
        fixed = substitute(f"{kw} {args}", ctx, where, kw)
    return fixed.split("\n")


def _args_of(instruction_text: str) -> str:
    df = parse_dockerfile_text(instruction_text, "-")
    return "\n".join(i.args for i in df.instructions)


@dataclass(frozen=True)
class Check:
    """One finding of a text rule at one place, and whether the fix removes it."""

    rule: TextRule
    line: int  # 1-based line in the file
    what: str  # the matched text
    auto: bool


def code_of(text: str) -> str:
    """Text without comment lines and without our own ``# flymigrate:`` notes (which quote what was removed)."""
    out = []
    for ln in text.split("\n"):
        if ln.lstrip().startswith("#"):
            continue
        k = ln.find(MARK)
        out.append(ln if k < 0 else ln[:k])
    return "\n".join(out)


def check_instruction(keyword: str, args: str, line: int, fixed: list[str] | None,
                      ctx: RewriteContext | None = None) -> list[Check]:
    """What each text rule finds in one instruction, and whether it still finds it in ``fixed`` (the lines
    ``fix_instruction`` returned; None = unchanged). A gated rule counts only when ``ctx`` turns it on."""
    out: list[Check] = []
    args = code_of(args)
    after = args if fixed is None else code_of(_args_of("\n".join(fixed)))
    for r in TEXT_RULES:
        if keyword not in r.keywords or r.gated and not (ctx is not None and r.active(ctx)):
            continue
        found = r.detect(args)
        if found:
            out.append(Check(r, line, r.shown(found[0]), not r.detect(after)))
    return out


# ------------------------------------------------------------------ scripts


class _Lines:
    """Line numbers of offsets in one text (bisect over the newline offsets: no rescans)."""

    def __init__(self, text: str) -> None:
        self.nl = [i for i, c in enumerate(text) if c == "\n"] if "\n" in text else []

    def at(self, pos: int) -> int:
        return bisect.bisect_left(self.nl, pos) + 1


def _script_units(text: str):
    """Top-level command items of a script: (start, end, sep_end) spans, or None when it cannot be read."""
    try:
        lst = parse(text)
    except ShellSyntaxError:
        return None
    return lst.items


def fix_script(text: str, ctx: RewriteContext, shown: str, keyword: str | None = None) -> str:
    """A shell script (start.sh, an entrypoint, a RUN heredoc): shims and Fly hooks out (a command alone on its
    line becomes a ``# flymigrate:`` comment), IPv6 binds to 0.0.0.0, ``$FLY_*`` made explicit. Comments are
    left alone. A script this reader cannot take apart gets only the substitutions, line by line."""
    if not any(r.detect(text) for r in TEXT_RULES):
        return text
    items = _script_units(text)
    if items is None:
        out = []
        for n, line in enumerate(text.split("\n"), 1):
            out.append(line if line.lstrip().startswith("#") else substitute(line, ctx, f"{shown}:{n}", keyword))
        return "\n".join(out)
    rules = [r for r in REMOVAL_RULES if r.active(ctx) and (keyword is None and r.in_scripts or
                                                             keyword is not None and keyword in r.keywords)]
    pred = _pred(rules)
    edits: list[tuple[int, int, str]] = []
    kept_last = ""
    lines = _Lines(text)
    for k, it in enumerate(items):
        ao = it.andor
        where = f"{shown}:{lines.at(ao.start)}"
        reasons: list[str] = []
        new = rewrite_andor(text, ao, pred, reasons) if rules else text[ao.start:ao.end]
        if new is not None and reasons and any(r.startswith("weights") for r in reasons) and _all_helpers(new):
            new = None
        if new is None:
            line_start = text.rfind("\n", 0, ao.start) + 1
            line_end = text.find("\n", ao.end)
            line_end = len(text) if line_end < 0 else line_end
            before = text[line_start:ao.start]
            after = text[ao.end:line_end]
            alone = not before.strip() and re.fullmatch(r"\s*[;&]?\s*(#.*)?", after) is not None
            nxt = items[k + 1].andor if k + 1 < len(items) else None
            nxt_word = text[nxt.start:nxt.end].split(None, 1)[0] if nxt else ""
            prev_word = (kept_last.split() or [""])[-1].rstrip(";")
            empty_body = prev_word in ("then", "else", "do", "{") and nxt_word in ("fi", "done", "else", "elif", "}")
            if alone:
                indent = before
                span_lines = text[line_start:line_end].split("\n")
                rep = [f"{indent}{': ' if empty_body else ''}{MARK} removed {_what(reasons)}: {span_lines[0].strip()}"]
                rep += [f"{indent}{MARK}   {ln.strip()}" for ln in span_lines[1:]]
                edits.append((line_start, line_end, "\n".join(rep)))
            else:
                end = it.sep_end if it.sep in (";", "&") else ao.end
                while end < len(text) and text[end] in " \t" and it.sep in (";", "&"):
                    end += 1
                edits.append((ao.start, end, "true" if empty_body else ""))
            continue
        new = substitute(new, ctx, where, keyword)
        kept_last = new
        if new != text[ao.start:ao.end]:
            edits.append((ao.start, ao.end, new))
    pieces: list[str] = []
    cuts: list[int] = []  # offsets in the output where a command was cut out (their lines get tidied)
    pos = size = 0
    for a, b, rep in sorted(edits):
        pieces.append(text[pos:a])
        size += a - pos
        if not rep:
            cuts.append(size)
        pieces.append(rep)
        size += len(rep)
        pos = b
    pieces.append(text[pos:])
    out = "".join(pieces)
    if cuts:  # tidy what a cut left on its line: `A; ` -> `A`
        lines_out = out.split("\n")
        at = _Lines(out)
        for ln in {at.at(c) - 1 for c in cuts}:
            line = lines_out[ln]
            tidy = re.sub(r"\s*;\s*$", "", line.rstrip()) if line.strip() else line
            lines_out[ln] = re.sub(r"^(\s*);\s*", r"\1", tidy)
        out = "\n".join(lines_out)
    return out


def check_script(text: str, ctx: RewriteContext, rel: str) -> list[Check]:
    """Every finding of a text rule in a script's code (comments are not code), with whether ``fix_script``
    removes it: the rule's detector runs again on the fixed command."""
    rules = [r for r in TEXT_RULES if r.in_scripts and (not r.gated or r.active(ctx))]
    if not any(r.detect(text) for r in rules):
        return []
    items = _script_units(text)
    units: list[tuple[int, str, str]] = []  # (start offset, text, fixed text)
    scratch = replace(ctx, notes=[])
    if items is None:
        pos = 0
        for line in text.split("\n"):
            if not line.lstrip().startswith("#"):
                units.append((pos, line, substitute(line, scratch, rel)))
            pos += len(line) + 1
    else:
        for it in items:
            seg = text[it.andor.start:it.andor.end]
            fixed = fix_script(seg, scratch, rel)
            units.append((it.andor.start, seg, code_of(fixed)))
    out: list[Check] = []
    lines = _Lines(text)
    for r in rules:
        for start, seg, fixed in units:
            found = r.detect(seg)
            if not found:
                continue
            auto = not r.detect(fixed)
            for m in found:
                out.append(Check(r, lines.at(start + m.start()), r.shown(m), auto))
    return out
