"""Per-file result cache in `.eqxlint_cache/` (ignored by git). Keyed by the file's content hash,
its module name, the eqxlint version and the effective configuration. Entries are written
atomically (temp file + rename), so parallel runs never see a half-written entry; an entry that
does not load or does not match is ignored and rebuilt, never trusted."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Optional

from .. import __version__
from ..engine.run import FileResult
from .fixes import replace_atomic

FORMAT = 1


class Cache:
    def __init__(self, root: Path, fingerprint: str, enabled: bool = True):
        self.enabled = enabled
        self.base = root
        self.dir = root / f"v{__version__}-{fingerprint}"
        self._ready = False

    def key(self, data: bytes, path: str, module_name: str) -> str:
        h = hashlib.sha256(data)
        h.update(b"\0" + path.encode("utf-8", "surrogatepass") + b"\0" + module_name.encode())
        return h.hexdigest()

    def get(self, key: str) -> Optional[FileResult]:
        if not self.enabled:
            return None
        try:
            with open(self.dir / key[:2] / f"{key}.json", "rb") as f:
                data = json.loads(f.read())
            if data.get("format") != FORMAT or data.get("version") != __version__ or data.get("key") != key:
                return None
            return FileResult.from_json(data["result"])
        except Exception:
            return None

    def put(self, key: str, result: FileResult) -> None:
        if not self.enabled or result.errors:
            return
        try:
            self._prepare()
            folder = self.dir / key[:2]
            folder.mkdir(parents=True, exist_ok=True)
            payload = json.dumps(
                {"format": FORMAT, "version": __version__, "key": key, "result": result.to_json()}
            )
            replace_atomic(folder / f"{key}.json", payload.encode("utf-8"))
        except (OSError, TypeError, ValueError):
            pass  # a read-only or full disk only costs speed

    # ------------------------------------------------------------------ project results
    # A warm run with nothing changed still had to load every file's result (facts included:
    # ~40 kB of JSON per file) and rebuild the project's call graph to finalize: 5 s and 580 MB
    # on the 2,000-file corpus. The project phase is a function of the per-file results, the
    # settings and the set of files, so its output is cached too, keyed by all of them: one
    # entry per invocation (the checked paths and the settings), overwritten by the next run.

    def project_key(self, entries: list, settings, extra: str = "") -> str:
        """`entries`: (path, file key) of every file the project phase sees, in order."""
        h = hashlib.sha256(repr(settings).encode("utf-8", "surrogatepass"))
        h.update(extra.encode("utf-8", "surrogatepass"))
        for path, key in entries:
            h.update(b"\0" + path.encode("utf-8", "surrogatepass") + b"\0" + key.encode())
        return h.hexdigest()

    def _project_file(self, slot: str) -> Path:
        return self.dir / "project" / f"{slot}.json"

    def get_project(self, slot: str, key: str) -> Optional[dict]:
        if not self.enabled:
            return None
        try:
            with open(self._project_file(slot), "rb") as f:
                data = json.loads(f.read())
            if data.get("format") != FORMAT or data.get("version") != __version__ or data.get("key") != key:
                return None
            return data["result"]
        except Exception:
            return None

    def put_project(self, slot: str, key: str, result: dict) -> None:
        if not self.enabled:
            return
        try:
            self._prepare()
            path = self._project_file(slot)
            path.parent.mkdir(parents=True, exist_ok=True)
            payload = json.dumps({"format": FORMAT, "version": __version__, "key": key, "result": result})
            replace_atomic(path, payload.encode("utf-8"))
        except (OSError, TypeError, ValueError):
            pass

    def _prepare(self) -> None:
        if self._ready:
            return
        self.base.mkdir(parents=True, exist_ok=True)
        gi = self.base / ".gitignore"
        if not gi.exists():
            try:
                gi.write_text("# Automatically created by eqxlint.\n*\n", encoding="utf-8")
                (self.base / "CACHEDIR.TAG").write_text(
                    "Signature: 8a477f597d28d172789f06886806bc55\n", encoding="utf-8"
                )
            except OSError:
                pass
        self._ready = True
