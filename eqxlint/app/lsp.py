"""`eqxlint server`: a Language Server (LSP over stdio) built on pygls (the `lsp` extra).

- Diagnostics: for an open `.py` document, exactly what `eqxlint check <that file>` gives inside
  its project — the same configuration discovery, the same cache and the same cross-file facts —
  with the text in the editor (unsaved edits of every open document included). Each project's
  per-file results are held in memory (`api.ProjectSession`, loaded once through the cache);
  an edit re-lints only the edited document (re-parsing only the top-level statements that
  changed), updates its facts, re-runs the project phase and republishes every open document
  of the project whose findings changed.
- Edits are debounced: an edit after a pause is linted at once, an edit within `DEBOUNCE`
  seconds of the previous one waits until typing pauses for that long. Lints run one at a time on
  a worker thread; a run whose document changed meanwhile stops at its next checkpoint (before
  linting, before the project phase, before publishing) and never publishes.
- Hover, code actions and every other request are answered on the server's own thread from the
  last published results, without waiting for a lint.
- A broken `[tool.eqxlint]` (or `eqxlint.toml`) is shown with `window/showMessage`; the last
  valid settings stay in use (the defaults, if it never was valid) until it is fixed.
- Code actions on a finding: apply the rule's fix (unsafe fixes are offered too, marked
  "(unsafe)": applying one in an editor is an explicit choice), and add `# noqa: CODE` on the line
  (merged with an existing directive, as `--add-noqa` does).
- Columns are in the position encoding negotiated with the client: UTF-16 unless the client
  offers another (LSP 3.17 `general.positionEncodings`).

It never imports jax. Notebook documents are not handled yet (only `.py` text documents).
"""

from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import logging
import os
import time
from pathlib import Path
from typing import Optional

from .. import __version__

log = logging.getLogger("eqxlint.lsp")

DEBOUNCE = 0.04  # seconds of quiet typing before a burst of edits is linted
WATCHED = ("**/*.py", "**/pyproject.toml", "**/eqxlint.toml", "**/.eqxlint.toml")


# ---------------------------------------------------------------------------- positions
def _units(line: str, col: int, encoding: str = "utf-16") -> int:
    """Character column -> code units of the position encoding (LSP's default: UTF-16)."""
    prefix = line[:col]
    if encoding == "utf-32":
        return len(prefix)
    if encoding == "utf-8":
        return len(prefix.encode("utf-8", "surrogatepass"))
    return col + sum(1 for ch in prefix if ord(ch) > 0xFFFF)


def _utf16_col(line: str, col: int) -> int:
    return _units(line, col, "utf-16")


def _lines(text: str) -> list:
    return text.split("\n")


def _position(text_lines: list, row: int, col: int, encoding: str = "utf-16"):
    """1-based row, 1-based character column -> LSP Position."""
    from lsprotocol import types

    r = max(row - 1, 0)
    line = text_lines[r] if r < len(text_lines) else ""
    return types.Position(line=r, character=_units(line.rstrip("\r"), max(col - 1, 0), encoding))


def _offset_position(text: str, offset: int, encoding: str = "utf-16"):
    from lsprotocol import types

    before = text[:offset]
    row = before.count("\n")
    start = before.rfind("\n") + 1
    return types.Position(line=row, character=_units(text[start:offset], offset - start, encoding))


def _minimal_edit(old: str, new: str, encoding: str = "utf-16"):
    """One TextEdit turning `old` into `new` (common prefix and suffix left alone)."""
    from lsprotocol import types

    p = 0
    n = min(len(old), len(new))
    while p < n and old[p] == new[p]:
        p += 1
    s = 0
    while s < n - p and old[len(old) - 1 - s] == new[len(new) - 1 - s]:
        s += 1
    return types.TextEdit(
        range=types.Range(start=_offset_position(old, p, encoding),
                          end=_offset_position(old, len(old) - s, encoding)),
        new_text=new[p: len(new) - s],
    )


# ---------------------------------------------------------------------------- projects
@dataclasses.dataclass
class _Project:
    session: object  # api.ProjectSession
    stamp: Optional[tuple]  # (mtime_ns, size) of the configuration file the settings came from


def _stamp(path: Optional[Path]) -> Optional[tuple]:
    if path is None:
        return None
    try:
        st = os.stat(path)
    except OSError:
        return ("missing",)
    return (st.st_mtime_ns, st.st_size)


class Projects:
    """The projects of the open documents, each an `api.ProjectSession`, found and configured as
    `eqxlint check <file>` finds and configures them. Not thread-safe: the server uses it from
    its one lint thread. No pygls needed (tests use it directly)."""

    def __init__(self, *, cache: bool = True, jobs: Optional[int] = None, mp_context=None):
        self.cache, self.jobs, self.mp_context = cache, jobs, mp_context
        self.projects: dict = {}  # key -> _Project
        self.key_of: dict = {}  # absolute path of an open document -> its project's key
        self.versions: dict = {}  # absolute path -> version of the text held for it
        self.uris: dict = {}  # absolute path -> document URI

    def _key(self, path: Path) -> tuple:
        from . import api, config

        cfg = config.find_config(path)
        if cfg is not None:
            return ("config", str(cfg.resolve())), cfg
        return ("root", str(api._project_root(path))), None

    def session_for(self, path) -> tuple:
        """(session, key, messages): the session of `path`'s project, with its configuration
        re-read when the file changed. A configuration error is a message, and the last valid
        settings (the defaults if there never were any) stay in use."""
        from . import api, config

        path = Path(path)
        key, cfg = self._key(path)
        stamp = _stamp(cfg)
        proj = self.projects.get(key)
        if proj is not None and proj.stamp == stamp:
            return proj.session, key, []
        messages = []
        try:
            settings = api.settings_for([path])
        except config.ConfigError as e:
            keep = "the last valid settings" if proj is not None else "the default settings"
            messages.append(f"eqxlint: {e}. Using {keep} until it is fixed.")
            if proj is None:
                root = cfg.resolve().parent if cfg is not None else Path(key[1])
                proj = _Project(self._new(config.Settings(root=root)), stamp)
                self.projects[key] = proj
            proj.stamp = stamp
            return proj.session, key, messages
        if proj is None or dataclasses.asdict(proj.session.settings) != dataclasses.asdict(settings):
            session = self._new(settings)
            if proj is not None:  # carry the documents held in memory over
                for p, text in proj.session.held().items():
                    session.update(p, text)
            proj = _Project(session, stamp)
            self.projects[key] = proj
        proj.stamp = stamp
        return proj.session, key, messages

    def _new(self, settings):
        from . import api

        return api.ProjectSession(settings, cache=self.cache, jobs=self.jobs, mp_context=self.mp_context)

    def apply(self, path, text: Optional[str], version=None, uri: Optional[str] = None) -> tuple:
        """Hold `text` for the open document `path` (re-lint it). Returns (key, messages)."""
        key_path = os.path.abspath(path)
        session, key, messages = self.session_for(path)
        old = self.key_of.get(key_path)
        if old is not None and old != key and old in self.projects:
            self.projects[old].session.forget(key_path)  # it now belongs to another project
        self.key_of[key_path] = key
        self.versions[key_path] = version
        if uri is not None:
            self.uris[key_path] = uri
        session.update(key_path, text)
        return key, messages

    def close(self, path) -> Optional[tuple]:
        key_path = os.path.abspath(path)
        key = self.key_of.pop(key_path, None)
        self.versions.pop(key_path, None)
        self.uris.pop(key_path, None)
        if key is not None and key in self.projects:
            self.projects[key].session.forget(key_path)
        return key

    def refresh(self) -> list:
        """Files changed on disk: every session re-reads what changed. Returns the keys."""
        for proj in self.projects.values():
            proj.session.refresh()
        return list(self.projects)

    def open_in(self, key) -> list:
        return [p for p, k in self.key_of.items() if k == key]

    def diagnostics(self, key) -> dict:
        """{absolute path: [Diagnostic]} of the open documents of project `key`."""
        proj = self.projects.get(key)
        paths = self.open_in(key)
        if proj is None or not paths:
            return {}
        return proj.session.diagnostics(paths)

    def text(self, path) -> Optional[str]:
        key = self.key_of.get(os.path.abspath(path))
        proj = self.projects.get(key)
        return proj.session.text(path) if proj is not None else None


class Linter:
    """Lints a document's text as the server does, for one caller (tests, scripts)."""

    def __init__(self, **kw):
        kw.setdefault("jobs", 1)  # no worker processes unless asked for
        self.projects = Projects(**kw)

    def lint(self, text: str, path: Path) -> list:
        key, _ = self.projects.apply(path, text)
        return self.projects.diagnostics(key).get(os.path.abspath(path), [])


# ---------------------------------------------------------------------------- the server
@dataclasses.dataclass
class _Doc:
    uri: str
    path: str
    version: Optional[int]
    text: str
    last_edit: float = -1e9
    timer: object = None


@dataclasses.dataclass
class _Job:
    kind: str  # "lint" | "close" | "refresh"
    uri: str = ""
    path: str = ""
    version: Optional[int] = None
    text: Optional[str] = None


@dataclasses.dataclass
class _Published:
    version: Optional[int]
    text: str
    diags: list  # eqxlint Diagnostics
    lsp: list  # lsp Diagnostics, in the same order
    key: tuple  # what the client was sent, to tell whether anything changed


class _Stale(Exception):
    pass


def build_server(*, cache: bool = True):
    import asyncio
    import multiprocessing

    from lsprotocol import types
    from pygls.lsp.server import LanguageServer
    from pygls.uris import to_fs_path

    from . import fixes, noqa_writer
    from ..engine import registry
    from ..core.diagnostics import SAFE

    server = LanguageServer("eqxlint", __version__)
    projects = Projects(cache=cache, mp_context=multiprocessing.get_context("spawn"))
    lint_thread = cf.ThreadPoolExecutor(max_workers=1, thread_name_prefix="eqxlint-lint")
    docs: dict = {}  # uri -> _Doc (loop thread)
    published: dict = {}  # uri -> _Published (loop thread)
    ready: dict = {}  # uri or job name -> _Job waiting for the lint thread, in order
    state = {"running": None, "loop": None, "closed": False}
    severity = {
        "error": types.DiagnosticSeverity.Error,
        "warning": types.DiagnosticSeverity.Warning,
        "info": types.DiagnosticSeverity.Information,
    }

    def encoding() -> str:
        enc = server.workspace.position_encoding
        return str(getattr(enc, "value", enc) or "utf-16")

    def to_lsp(diags: list, text: str, enc: str) -> list:
        lines = _lines(text)
        out = []
        for d in diags:
            doc_ = registry.doc(d.code)
            out.append(types.Diagnostic(
                range=types.Range(start=_position(lines, d.row, d.column, enc),
                                  end=_position(lines, d.end_row, d.end_column, enc)),
                message=d.message,
                severity=severity.get(d.severity, types.DiagnosticSeverity.Warning),
                code=d.code,
                code_description=types.CodeDescription(href=doc_.url) if doc_ is not None and doc_.url else None,
                source="eqxlint",
            ))
        return out

    # -- the lint thread ---------------------------------------------------------------------
    def run_job(job: _Job, enc: str):
        """Runs on the lint thread. Returns (messages, [(uri, version, text, diags, lsp)])."""

        def check():
            if job.kind == "lint":
                doc = docs.get(job.uri)
                if doc is None or doc.version != job.version:
                    raise _Stale

        t0 = time.perf_counter()
        try:
            messages: list = []
            if job.kind == "refresh":
                keys = projects.refresh()
            else:
                check()
                if job.kind == "lint":
                    key, messages = projects.apply(job.path, job.text, job.version, job.uri)
                else:
                    key = projects.close(job.path)
                keys = [key] if key is not None else []
            t1 = time.perf_counter()
            out = []
            for key in keys:
                check()
                for path, diags in projects.diagnostics(key).items():
                    text = projects.text(path)
                    uri = projects.uris.get(path)
                    if text is None or uri is None:
                        continue
                    out.append((uri, projects.versions.get(path), text, diags, to_lsp(diags, text, enc)))
            check()
            log.debug("%s %s v%s: lint %.1f ms, project phase and conversion %.1f ms", job.kind, job.path,
                      job.version, (t1 - t0) * 1000, (time.perf_counter() - t1) * 1000)
            return messages, out
        except _Stale:
            log.debug("%s %s v%s: stale after %.1f ms", job.kind, job.path, job.version,
                      (time.perf_counter() - t0) * 1000)
            return None

    def done(job: _Job, fut) -> None:
        state["running"] = None
        if fut.cancelled() or state["closed"]:
            return
        try:
            outcome = fut.result()
        except Exception as e:  # never let one document take the server down
            log.exception("eqxlint failed on %s", job.path)
            server.window_log_message(types.LogMessageParams(
                type=types.MessageType.Error, message=f"eqxlint failed on {job.path}: {type(e).__name__}: {e}"))
            outcome = None
        if outcome is not None:
            messages, docs_out = outcome
            for m in messages:
                server.window_show_message(types.ShowMessageParams(type=types.MessageType.Error, message=m))
            for uri, version, text, diags, lsp in docs_out:
                doc = docs.get(uri)
                if doc is None or doc.version != version or doc.text != text:
                    continue  # an edit since: its own lint will publish
                key = tuple((ld.range.start.line, ld.range.start.character, ld.range.end.line,
                             ld.range.end.character, ld.code, ld.message, ld.severity) for ld in lsp)
                prev = published.get(uri)
                published[uri] = _Published(version, text, diags, lsp, key)
                if uri == job.uri or prev is None or prev.key != key:
                    server.text_document_publish_diagnostics(
                        types.PublishDiagnosticsParams(uri=uri, version=version, diagnostics=lsp))
        pump()

    def pump() -> None:
        if state["running"] is not None or not ready or state["closed"]:
            return
        name = next(iter(ready))
        job = ready.pop(name)
        if job.kind == "lint":
            doc = docs.get(job.uri)
            if doc is None:
                return pump()
            job.version, job.text = doc.version, doc.text
        fut = state["loop"].run_in_executor(lint_thread, run_job, job, encoding())
        state["running"] = fut
        fut.add_done_callback(lambda f: done(job, f))

    def enqueue(name: str, job: _Job) -> None:
        ready.pop(name, None)
        ready[name] = job
        pump()

    def schedule(uri: str, *, now: bool = False) -> None:
        """Lint `uri` after `DEBOUNCE` seconds without edits, or at once after a pause."""
        doc = docs.get(uri)
        if doc is None:
            return
        loop = state["loop"] = asyncio.get_running_loop()
        t = loop.time()
        quiet = now or t - doc.last_edit >= DEBOUNCE
        doc.last_edit = t
        if doc.timer is not None:
            doc.timer.cancel()
            doc.timer = None
        job = _Job("lint", uri, doc.path)
        if quiet:
            enqueue(uri, job)
        else:
            ready.pop(uri, None)  # wait for the pause in typing

            def fire():
                doc.timer = None
                enqueue(uri, job)

            doc.timer = loop.call_later(DEBOUNCE, fire)

    def snapshot(uri: str) -> bool:
        """Record the document's current text and version; False for documents not linted."""
        doc = server.workspace.get_text_document(uri)
        fs = to_fs_path(uri) if uri.startswith("file:") else None
        if fs is None:
            return False
        path = Path(fs)
        if path.suffix not in (".py", ".pyi") and doc.language_id != "python":
            return False
        entry = docs.get(uri)
        if entry is None:
            entry = docs[uri] = _Doc(uri, os.path.abspath(fs), doc.version, doc.source)
        else:
            entry.version, entry.text = doc.version, doc.source
        return True

    # -- notifications -----------------------------------------------------------------------
    @server.feature(types.INITIALIZED)
    def initialized(ls, params: types.InitializedParams):
        state["loop"] = asyncio.get_running_loop()
        caps = ls.client_capabilities
        ws = getattr(caps, "workspace", None)
        watched = getattr(ws, "did_change_watched_files", None) if ws is not None else None
        if watched is not None and watched.dynamic_registration:
            ls.client_register_capability(types.RegistrationParams(registrations=[types.Registration(
                id="eqxlint-watched-files", method=types.WORKSPACE_DID_CHANGE_WATCHED_FILES,
                register_options=types.DidChangeWatchedFilesRegistrationOptions(
                    watchers=[types.FileSystemWatcher(glob_pattern=g) for g in WATCHED]),
            )]))

    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls, params: types.DidOpenTextDocumentParams):
        if snapshot(params.text_document.uri):
            schedule(params.text_document.uri, now=True)

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls, params: types.DidChangeTextDocumentParams):
        if snapshot(params.text_document.uri):
            schedule(params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_SAVE)
    def did_save(ls, params: types.DidSaveTextDocumentParams):
        # A save is when other tools (formatters, a `git` command) have usually run too: re-read
        # the files that changed on disk, then lint the saved document.
        state["loop"] = asyncio.get_running_loop()
        enqueue("refresh", _Job("refresh"))
        if snapshot(params.text_document.uri):
            schedule(params.text_document.uri, now=True)

    @server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls, params: types.DidCloseTextDocumentParams):
        uri = params.text_document.uri
        doc = docs.pop(uri, None)
        published.pop(uri, None)
        ready.pop(uri, None)
        server.text_document_publish_diagnostics(types.PublishDiagnosticsParams(uri=uri, diagnostics=[]))
        if doc is not None:
            if doc.timer is not None:
                doc.timer.cancel()
            state["loop"] = asyncio.get_running_loop()
            enqueue("close:" + uri, _Job("close", uri, doc.path))

    @server.feature(types.WORKSPACE_DID_CHANGE_WATCHED_FILES)
    def did_change_watched_files(ls, params: types.DidChangeWatchedFilesParams):
        state["loop"] = asyncio.get_running_loop()
        enqueue("refresh", _Job("refresh"))

    @server.feature(types.SHUTDOWN)
    def shutdown(ls, params):
        for doc in docs.values():
            if doc.timer is not None:
                doc.timer.cancel()
        ready.clear()
        state["closed"] = True
        lint_thread.shutdown(wait=False, cancel_futures=True)

    # -- requests: answered from the last published results, never waiting for a lint -------
    def _overlaps(a, b) -> bool:
        return (a.start.line, a.start.character) <= (b.end.line, b.end.character) and (
            b.start.line, b.start.character) <= (a.end.line, a.end.character)

    @server.feature(
        types.TEXT_DOCUMENT_CODE_ACTION,
        types.CodeActionOptions(code_action_kinds=[types.CodeActionKind.QuickFix]),
    )
    def code_action(ls, params: types.CodeActionParams):
        uri = params.text_document.uri
        entry = published.get(uri)
        doc = docs.get(uri)
        if entry is None or doc is None or doc.text != entry.text:
            return []  # the text changed since the last lint: its edits would land elsewhere
        text, enc = entry.text, encoding()
        actions = []
        for d, ld in zip(entry.diags, entry.lsp):
            if not _overlaps(ld.range, params.range):
                continue
            if d.fix is not None:
                new, applied = fixes.apply_edits(text, [d], unsafe=True)
                if applied and new != text:
                    title = f"{d.code}: {d.fix.message}" + ("" if d.fix.applicability == SAFE else " (unsafe)")
                    edits = [types.TextEdit(range=types.Range(start=_offset_position(text, e.start, enc),
                                                              end=_offset_position(text, e.end, enc)),
                                            new_text=e.content) for e in d.fix.edits]
                    actions.append(types.CodeAction(
                        title=title, kind=types.CodeActionKind.QuickFix, diagnostics=[ld],
                        is_preferred=d.fix.applicability == SAFE,
                        edit=types.WorkspaceEdit(changes={uri: edits}),
                    ))
            if d.code not in noqa_writer.NOT_SILENCED:
                new, n = noqa_writer.add_to_source(text, {d.noqa_row or d.row: {d.code}})
                if n and new != text:
                    actions.append(types.CodeAction(
                        title=f"{d.code}: Disable for this line (`# noqa: {d.code}`)",
                        kind=types.CodeActionKind.QuickFix, diagnostics=[ld],
                        edit=types.WorkspaceEdit(changes={uri: [_minimal_edit(text, new, enc)]}),
                    ))
        return actions

    @server.feature(types.TEXT_DOCUMENT_HOVER)
    def hover(ls, params: types.HoverParams):
        entry = published.get(params.text_document.uri)
        if entry is None:
            return None
        pos = params.position
        parts = []
        for d, ld in zip(entry.diags, entry.lsp):
            r = ld.range
            if (r.start.line, r.start.character) <= (pos.line, pos.character) <= (r.end.line, r.end.character):
                doc = registry.doc(d.code)
                if doc is None:
                    parts.append(f"**{d.code}**: {d.message}")
                    continue
                head = f"**{d.code} {doc.name}** ({doc.severity})"
                parts.append(f"{head}\n\n{doc.body.strip()}" + (f"\n\n[Documentation]({doc.url})" if doc.url else ""))
        if not parts:
            return None
        return types.Hover(contents=types.MarkupContent(kind=types.MarkupKind.Markdown,
                                                         value="\n\n---\n\n".join(dict.fromkeys(parts))))

    server.eqxlint_projects = projects  # for tests and debugging
    return server


def serve() -> int:
    try:
        import pygls  # noqa: F401
        import lsprotocol  # noqa: F401
    except ImportError:
        import sys

        sys.stderr.write("eqxlint: error: `eqxlint server` needs the `lsp` extra: pip install 'eqxlint[lsp]'\n")
        return 2
    if os.environ.get("EQXLINT_LSP_LOG"):
        logging.basicConfig(filename=os.environ["EQXLINT_LSP_LOG"], level=logging.DEBUG,
                            format="%(asctime)s %(name)s %(levelname)s %(message)s")
        # pygls logs every message in full (a document's whole text on each change) at DEBUG and
        # INFO: that alone would slow the server down; set EQXLINT_LSP_LOG_PYGLS=1 to see it.
        if not os.environ.get("EQXLINT_LSP_LOG_PYGLS"):
            logging.getLogger("pygls").setLevel(logging.WARNING)
    from ..syntax.parsing import tune_gc

    tune_gc()
    build_server().start_io()
    return 0
