"""What in the image only made sense on Fly: found here, fixed by the Dockerfile executor.

Pure analysis of the parsed Dockerfile, fly.toml and the app's own scripts; no I/O beyond what the caller
passes in (``scripts`` maps a relative path to its text).
"""

from __future__ import annotations

import re

from .model import DockerIssue, Dockerfile, FlyApp

SHIM_RE = re.compile(r"(?<![\w/-])(ldconfig|nvidia-smi)(?![\w-])|rm\s+-rf?\s+/usr/local/cuda/lib64/stubs")
FLY_ENTRYPOINT_D_RE = re.compile(r"/opt/nvidia/entrypoint\.d/[^\s\"']*fly[^\s\"']*", re.I)
FLY_ENV_RE = re.compile(r"\$\{?FLY_[A-Z_]+\}?")
IPV6_RE = re.compile(
    r"fly-local-6pn|inet6_tcp|\[::\](?::\d+)?|(?<=[\s=\"'])::(?=[\s\"']|$)|\[0000:0000:0000:0000:0000:0000:0000:0000\]"
    r"|(?:--host|--bind|-b|HOST=|_IP=|_HOST=)\s*[\"']?::(?![0-9a-f])",
    re.I,
)
BAKED_RE = re.compile(
    r"(huggingface-cli|hf)\s+download\s+|snapshot_download\s*\(|hf_hub_download\s*\(|\.from_pretrained\s*\("
    r"|ollama\s+(pull|run)\s+|git\s+lfs\s+pull|git\s+clone\s+\S*huggingface\.co/"
    r"|(wget|curl)\s+[^\n]*?\.(safetensors|gguf|ggml|bin|ckpt|pt|pth|onnx)\b",
    re.I,
)
CUDA_BASE_HINTS = ("cuda", "nvidia", "pytorch", "tensorflow", "vllm", "ollama", "tritonserver", "cudnn", "nvcr.io",
                   "runpod/", "huggingface/", "ghcr.io/ggerganov", "local-ai", "cublas", "livebook", "colab")
# installs that bring their own CUDA user space (pip wheels pull nvidia-*-cu12, ollama bundles its runtime);
# the targets inject the driver (libcuda) just as Fly did, so such images need no CUDA base image
BUNDLES_CUDA_RE = re.compile(
    r"\b(pip3?|uv\s+pip|python3?\s+-m\s+pip|poetry|conda|mamba)\b[^\n]*\b(install|add)\b[^\n]*"
    r"\b(torch|vllm|xformers|sglang|nvidia-[a-z0-9-]+-cu1\d|jax\[cuda\d*[^\]]*\]|tensorflow\[and-cuda\]|"
    r"onnxruntime-gpu|cupy-cuda\w+|openai-whisper|faster-whisper|ctranslate2|diffusers|sentence-transformers|"
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


def _line_of(text: str, match_start: int) -> int:
    return text.count("\n", 0, match_start) + 1


def analyze(
    app: FlyApp,
    df: Dockerfile | None,
    scripts: dict[str, str],
    *,
    uses_gpu: bool,
) -> list[DockerIssue]:
    issues: list[DockerIssue] = []
    # --- the Dockerfile itself
    if df is not None:
        final_from = None
        for ins in df.instructions:
            where = f"{df.path}:{ins.line}"
            body = ins.args
            if ins.keyword == "FROM":
                final_from = ins
            if ins.keyword in ("RUN", "CMD", "ENTRYPOINT") and SHIM_RE.search(body):
                issues.append(DockerIssue("driver-shim", f"{ins.keyword} runs a Fly GPU driver shim "
                                          f"(`{SHIM_RE.search(body).group(0)}`): the targets provide the NVIDIA "  # type: ignore[union-attr]
                                          "driver themselves.", where, ins.line, "remove the shim"))
            if FLY_ENTRYPOINT_D_RE.search(body):
                issues.append(DockerIssue("fly-entrypoint-d", "a Fly-specific script in /opt/nvidia/entrypoint.d/ "
                                          "is not needed off Fly.", where, ins.line, "drop it"))
            if ins.keyword in ("RUN", "CMD", "ENTRYPOINT", "ENV") and FLY_ENV_RE.search(body):
                issues.append(DockerIssue("fly-env", f"uses {FLY_ENV_RE.search(body).group(0)}, which only Fly "  # type: ignore[union-attr]
                                          "sets at run time.", where, ins.line, "replace with an explicit value"))
            if ins.keyword in ("ENV", "CMD", "ENTRYPOINT", "RUN", "ARG") and IPV6_RE.search(body):
                issues.append(DockerIssue("ipv6-bind", f"binds IPv6-only (`{IPV6_RE.search(body).group(0).strip()}`); "  # type: ignore[union-attr]
                                          "the targets route to 0.0.0.0 (IPv4).", where, ins.line, "bind 0.0.0.0"))
            if ins.keyword == "RUN" and BAKED_RE.search(body):
                issues.append(DockerIssue("baked-weights", "downloads model weights into an image layer at build "
                                          "time: slow builds, huge images, every cold start pulls them again.",
                                          where, ins.line, "move the download into the weights step (mounted "
                                          "volume) and drop it from the image"))
        image = needs_cuda_base(df) if uses_gpu else None
        if image is not None and final_from is not None:
            issues.append(DockerIssue("no-cuda", f"the base image {image} has no CUDA user-space libraries and "
                                      "nothing installed brings them; on Fly the host injected the driver libs. "
                                      "Off Fly the image needs CUDA (a nvidia/cuda runtime base, or CUDA wheels "
                                      "such as torch+cu12).", f"{df.path}:{final_from.line}", final_from.line,
                                      "switch the base to nvidia/cuda:12.4.1-cudnn-runtime-ubuntu22.04"))
    # --- fly.toml parts that were applied at deploy time
    for f in app.files:
        if FLY_ENTRYPOINT_D_RE.search(f.guest_path):
            issues.append(DockerIssue("fly-entrypoint-d", f"[[files]] injects {f.guest_path}, a Fly-only "
                                      "driver-setup hook.", f.where, None, "drop it"))
            continue
        src = f"local file {f.local_path}" if f.local_path else ("the secret " + f.secret_name if f.secret_name
                                                                else "an inline raw_value")
        issues.append(DockerIssue("files", f"[[files]] injected {f.guest_path} from {src} at deploy time; the "
                                  "image must carry it now.", f.where, None,
                                  "COPY it into the image" if f.local_path else
                                  ("mount the secret as a file" if f.secret_name else "write it in the image")))
    if app.experimental_entrypoint or app.experimental_cmd:
        what = "entrypoint" if app.experimental_entrypoint else "cmd"
        val = app.experimental_entrypoint or app.experimental_cmd
        issues.append(DockerIssue("cmd", f"[experimental] {what} = {list(val or ())} overrode the image at deploy "
                                  "time; it becomes an explicit ENTRYPOINT/CMD.", app.config_path, None,
                                  f"write {what.upper() if what == 'cmd' else 'ENTRYPOINT'} into the Dockerfile"))
    if app.processes:
        issues.append(DockerIssue("processes", "[processes] commands replaced CMD per process group; the served "
                                  "group's command becomes the image CMD.", app.config_path, None,
                                  "write CMD for the HTTP process group"))
    if app.build.image and app.build.image.startswith("registry.fly.io/"):
        issues.append(DockerIssue("registry", f"{app.build.image} lives in Fly's private registry.",
                                  app.build.where, None, "re-push to a registry the target can pull"))
    # --- env and scripts (start.sh, entrypoints, [[files]] sources)
    for name, value in app.env:
        if IPV6_RE.search(f" {value} ") or value.strip() in ("::", "[::]"):
            issues.append(DockerIssue("ipv6-bind", f"[env] {name} = {value!r} binds IPv6 only.",
                                      app.env_line(name), None, "set it to 0.0.0.0"))
    for rel, text in sorted(scripts.items()):
        for rx, kind, msg in (
            (SHIM_RE, "driver-shim", "runs a Fly GPU driver shim"),
            (IPV6_RE, "ipv6-bind", "binds IPv6 only"),
            (FLY_ENV_RE, "fly-env", "uses a FLY_* variable"),
        ):
            for m in rx.finditer(text):
                line = _line_of(text, m.start())
                issues.append(DockerIssue(kind, f"{rel} {msg} (`{m.group(0).strip()}`).", f"{rel}:{line}", line,
                                          {"driver-shim": "remove the shim", "ipv6-bind": "bind 0.0.0.0",
                                           "fly-env": "replace with an explicit value"}[kind]))
    return issues
