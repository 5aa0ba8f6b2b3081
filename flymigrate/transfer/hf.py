"""Hugging Face Hub model repos as a source: ``hf://ORG/REPO[@REV]``.

The revision (branch, tag or nothing = main) is pinned to its commit sha once, at listing time, so
a run and its resumes always read the same bytes. ``HF_TOKEN`` comes from the environment (never
argv, never logged); ``HF_ENDPOINT`` is honoured (huggingface_hub reads it at import). LFS files
carry their sha256, which the engine checks end to end. Reads are plain ranged GETs on
``resolve/<commit>/<file>`` so a dropped connection continues at the byte where it stopped.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any, BinaryIO
from urllib.parse import quote

from ..errors import RemoteError, UserError
from .base import AdapterOptions, Entry, ParsedURL, SourceCaps, TransientError
from .streams import IterReader

CHUNK = 1 << 20


class HFSource:
    caps = SourceCaps(ranged_read=True, hash_kind="sha256", seekable=False, parallel_ranges=True)

    def __init__(self, url: ParsedURL, opts: AdapterOptions) -> None:
        self.url = url.raw
        self.repo = url.root
        self.revision = url.revision
        self.commit: str | None = None
        self.warnings: list[str] = []
        self._token = opts.env.get("HF_TOKEN") or opts.env.get("HUGGING_FACE_HUB_TOKEN") or None
        from huggingface_hub import constants

        self.endpoint = os.environ.get("HF_ENDPOINT", constants.ENDPOINT).rstrip("/")

    def describe(self) -> str:
        return f"hf://{self.repo}@{self.commit or self.revision or 'main'}"

    def _headers(self) -> dict[str, str]:
        from huggingface_hub.utils import build_hf_headers

        return dict(build_hf_headers(token=self._token or False))

    def list(self) -> Iterator[Entry]:
        from huggingface_hub import HfApi
        from huggingface_hub import errors as hfe

        api = HfApi(endpoint=self.endpoint, token=self._token or False)
        try:
            info = api.model_info(self.repo, revision=self.revision, files_metadata=True)
        except hfe.RevisionNotFoundError:
            raise UserError(f"hf://{self.repo}: revision {self.revision!r} not found.") from None
        except hfe.GatedRepoError:
            raise UserError(f"hf://{self.repo} is gated.",
                            hint="Accept its terms on huggingface.co and set HF_TOKEN to a token of that account.") from None
        except hfe.RepositoryNotFoundError:
            raise UserError(f"hf://{self.repo} not found (or private).",
                            hint="Check the name; for a private repo set HF_TOKEN.") from None
        except hfe.HfHubHTTPError as e:
            status = getattr(getattr(e, "response", None), "status_code", 0) or 0
            if status in (401, 403):
                raise UserError(f"hf://{self.repo}: access denied ({status}).", hint="Set HF_TOKEN to a token with read access.") from None
            raise RemoteError(f"hf://{self.repo}: the Hub answered {status or 'an error'} while listing files.") from None
        except Exception as e:  # noqa: BLE001 -- connection-level (httpx ConnectError, timeouts): retried
            raise TransientError(f"listing hf://{self.repo} at {self.endpoint}: {type(e).__name__}", network=True) from None
        self.commit = info.sha
        if not self.commit:
            raise RemoteError(f"hf://{self.repo}: the Hub did not report a commit for revision {self.revision or 'main'!r}.")
        for s in info.siblings or []:
            if s.size is None:
                raise RemoteError(f"hf://{self.repo}: no size for {s.rfilename!r}.")
            sha = s.lfs.sha256 if s.lfs else None
            size = s.lfs.size if s.lfs else s.size
            # content-derived version token (git blob id): a moved branch with the same bytes keeps
            # half-done uploads resumable; a changed file restarts
            yield Entry(s.rfilename, int(size), sha256=sha, etag=s.blob_id or self.commit)

    def file_url(self, path: str) -> str:
        assert self.commit
        return f"{self.endpoint}/{self.repo}/resolve/{self.commit}/{quote(path)}"

    def open(self, entry: Entry, offset: int = 0, length: int | None = None) -> BinaryIO:
        from huggingface_hub.utils import get_session

        if self.commit is None:
            raise RuntimeError("list() first")
        headers = self._headers()
        headers["Accept-Encoding"] = "identity"
        ranged = bool(offset) or (length is not None and length < entry.size)
        if ranged:
            headers["Range"] = f"bytes={offset}-" + (str(offset + length - 1) if length is not None else "")
        client = get_session()
        try:
            cm = client.stream("GET", self.file_url(entry.path), headers=headers, follow_redirects=True, timeout=60)
            resp = cm.__enter__()
        except Exception as e:  # noqa: BLE001 -- connection level: retry
            raise TransientError(f"GET {entry.path}: {type(e).__name__}", network=True) from None
        status = resp.status_code
        if status in (429,) or status >= 500:
            cm.__exit__(None, None, None)
            ra = resp.headers.get("retry-after")
            raise TransientError(f"GET {entry.path}: HTTP {status}", float(ra) if ra and ra.isdigit() else None)
        if status in (401, 403):
            cm.__exit__(None, None, None)
            raise UserError(f"hf://{self.repo}: access denied reading {entry.path!r}.", hint="Set HF_TOKEN.")
        if status == 404:
            cm.__exit__(None, None, None)
            raise RemoteError(f"hf://{self.repo}: {entry.path!r} not found at {self.commit}.")
        if ranged and status != 206:
            cm.__exit__(None, None, None)
            raise RemoteError(f"hf://{self.repo}: the server ignored a range request for {entry.path!r} (HTTP {status}).")
        if status not in (200, 206):
            cm.__exit__(None, None, None)
            raise RemoteError(f"hf://{self.repo}: HTTP {status} reading {entry.path!r}.")

        def chunks() -> Iterator[bytes]:
            try:
                yield from resp.iter_raw(CHUNK)
            except Exception as e:  # noqa: BLE001
                raise TransientError(f"GET {entry.path}: {type(e).__name__} mid-stream", network=True) from None

        return IterReader(chunks(), close=lambda: cm.__exit__(None, None, None))  # type: ignore[return-value]

    def close(self) -> None:
        pass


def source(url: ParsedURL, opts: AdapterOptions) -> HFSource:
    return HFSource(url, opts)


def _unused(*_: Any) -> None:  # pragma: no cover
    pass
