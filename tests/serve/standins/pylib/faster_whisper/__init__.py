"""Stand-in ``faster_whisper`` package (not the real one): ``WhisperModel`` resolves and checks the model the way
faster-whisper 1.x does, then "transcribes" by returning a fixed segment.

Resolution (faster-whisper ``faster_whisper/transcribe.py`` ``WhisperModel.__init__`` and ``utils.py``
``download_model``): a ``model_size_or_path`` that is a directory is used as is; otherwise a size name
(``large-v3``) maps to ``Systran/faster-whisper-<size>`` (an ``ORG/NAME`` is used as given) and is fetched with
``huggingface_hub.snapshot_download(repo, cache_dir=download_root, local_files_only=...)`` -- offline here. The
folder must hold CTranslate2's ``model.bin`` and ``config.json``. On a GPU (``device="cuda"``, or ``"auto"``
with a GPU) CTranslate2 needs cuBLAS 12 and cuDNN, which neither it nor faster-whisper bring (faster-whisper
README "GPU" section; rhasspy/wyoming-faster-whisper#30 "Library libcublas.so.12 is not found"): the harness
passes the image's libraries in ``STANDIN_IMAGE_LIBS``.
"""

from __future__ import annotations

import os
import re
from collections import namedtuple
from typing import Any

__version__ = "standin"

_SIZES = ("tiny", "tiny.en", "base", "base.en", "small", "small.en", "medium", "medium.en", "large-v1",
          "large-v2", "large-v3", "large", "distil-large-v3", "large-v3-turbo", "turbo")

Segment = namedtuple("Segment", "id start end text")
Info = namedtuple("Info", "language language_probability duration")


def _fatal(msg: str) -> None:
    import json
    p = os.environ.get("STANDIN_STATUS")
    if p:
        with open(p, "a", encoding="utf-8") as f:
            f.write(json.dumps({"fatal": msg}) + "\n")


def download_model(size_or_id: str, output_dir: str | None = None, local_files_only: bool = False,
                   cache_dir: str | None = None) -> str:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HFValidationError, LocalEntryNotFoundError

    if re.match(r".*/.*", size_or_id):
        repo = size_or_id
    elif size_or_id in _SIZES:
        repo = "Systran/faster-whisper-" + ("large-v3" if size_or_id == "large" else size_or_id)
    else:
        raise ValueError(f"Invalid model size '{size_or_id}', expected one of: {', '.join(_SIZES)}")
    kw: dict[str, Any] = {"local_files_only": True}
    if output_dir is not None:
        kw["local_dir"] = output_dir
    if cache_dir is not None:
        kw["cache_dir"] = cache_dir
    try:
        return snapshot_download(repo, **kw)
    except HFValidationError as e:
        msg = (f"faster-whisper: {size_or_id!r} is not a directory, so it is taken as a Hub repo id, which it is "
               f"not ({e})")
        _fatal(msg)
        raise RuntimeError(msg) from None
    except LocalEntryNotFoundError:
        import huggingface_hub.constants as hc
        where = cache_dir or hc.HF_HUB_CACHE
        msg = (f"faster-whisper: weights not found at {where}/models--{repo.replace('/', '--')}"
               " (with the Hub reachable it would download them at every cold start)")
        _fatal(msg)
        raise RuntimeError(msg) from None


class WhisperModel:
    def __init__(self, model_size_or_path: str, device: str = "auto", device_index: int | list[int] = 0,
                 compute_type: str = "default", cpu_threads: int = 0, num_workers: int = 1,
                 download_root: str | None = None, local_files_only: bool = False, **_: Any) -> None:
        if os.path.isdir(model_size_or_path):
            path = model_size_or_path
        else:
            path = download_model(model_size_or_path, local_files_only=local_files_only, cache_dir=download_root)
        missing = [f for f in ("model.bin", "config.json") if not os.path.isfile(os.path.join(path, f))]
        if missing:
            msg = f"faster-whisper: {path} is not a CTranslate2 model folder (missing {', '.join(missing)})"
            _fatal(msg)
            raise RuntimeError(msg)
        gpus = int(os.environ.get("STANDIN_GPU_COUNT", "0") or "0")
        if device == "cuda" or (device == "auto" and gpus):
            libs = set(filter(None, os.environ.get("STANDIN_IMAGE_LIBS", "").split(",")))
            for lib, soname in (("cublas", "libcublas.so.12"), ("cudnn", "libcudnn_ops.so.9")):
                if lib not in libs:
                    msg = f"faster-whisper: Library {soname} is not found or cannot be loaded (the image lacks {lib})"
                    _fatal(msg)
                    raise RuntimeError(msg)
        self.model_path = path

    def transcribe(self, audio: Any, **_: Any) -> tuple[Any, Info]:
        return iter([Segment(0, 0.0, 1.0, " Hello from the stand-in.")]), Info("en", 0.99, 1.0)
