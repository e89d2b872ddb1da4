"""`eqxlint server`: a Language Server (LSP over stdio) built on pygls (the `lsp` extra).

- Diagnostics on open, change and save: the document's in-memory text is linted with the same
  engine and configuration as `eqxlint check` (the pyproject.toml / eqxlint.toml that applies to
  the file's path), as a single-file project.
- Code actions on a finding: apply the rule's fix (unsafe fixes are offered too, marked
  "(unsafe)": applying one in an editor is an explicit choice), and add `# noqa: CODE` on the line
  (merged with an existing directive, as `--add-noqa` does).
- Hover on a finding shows the rule's documentation.

It never imports jax. Notebook documents are not handled yet (only `.py` text documents).
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import Optional

from .. import __version__

log = logging.getLogger("eqxlint.lsp")


def _utf16_col(line: str, col: int) -> int:
    """Character column -> UTF-16 code units (the LSP default position encoding)."""
    prefix = line[:col]
    return col + sum(1 for ch in prefix if ord(ch) > 0xFFFF)


def _char_col(line: str, col16: int) -> int:
    units = 0
    for i, ch in enumerate(line):
        if units >= col16:
            return i
        units += 2 if ord(ch) > 0xFFFF else 1
    return len(line)


class Linter:
    """Lints document text; caches settings per configuration file. No pygls needed (testable)."""

    def __init__(self):
        self._runs: dict = {}
        self._lock = threading.Lock()

    def run_for(self, path: Path):
        from . import api, config
        from ..engine import run as engine

        try:
            settings = api.settings_for([path])
        except config.ConfigError as e:
            log.warning("eqxlint: %s; using default settings", e)
            settings = config.Settings(root=path.parent)
        key = (str(settings.config_path), str(settings.root))
        with self._lock:
            run = self._runs.get(key)
            if run is None:
                run = engine.RunConfig(settings)
                self._runs[key] = run
        return run

    def lint(self, text: str, path: Path) -> list:
        from . import api
        from ..engine import run as engine

        run = self.run_for(path)
        modname, is_pkg = api.module_name_for(path)
        res = engine.lint_source(text, str(path), run, modname, is_pkg)
        return engine.finalize([res], run)


def _lines(text: str) -> list:
    return text.split("\n")


def _position(text_lines: list, row: int, col: int):
    """1-based row, 1-based character column -> LSP Position."""
    from lsprotocol import types

    r = max(row - 1, 0)
    line = text_lines[r] if r < len(text_lines) else ""
    return types.Position(line=r, character=_utf16_col(line, max(col - 1, 0)))


def _offset_position(text: str, offset: int):
    from lsprotocol import types

    before = text[:offset]
    row = before.count("\n")
    start = before.rfind("\n") + 1
    line_end = text.find("\n", start)
    line = text[start: line_end if line_end >= 0 else len(text)]
    return types.Position(line=row, character=_utf16_col(line, offset - start))


def _minimal_edit(old: str, new: str):
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
        range=types.Range(start=_offset_position(old, p), end=_offset_position(old, len(old) - s)),
        new_text=new[p: len(new) - s],
    )


def build_server():
    from lsprotocol import types
    from pygls.lsp.server import LanguageServer
    from pygls.uris import to_fs_path

    from . import fixes, noqa_writer
    from ..engine import registry
    from ..core.diagnostics import SAFE

    server = LanguageServer("eqxlint", __version__)
    linter = Linter()
    results: dict = {}  # uri -> (text, [eqxlint Diagnostic], [lsp Diagnostic])
    severity = {
        "error": types.DiagnosticSeverity.Error,
        "warning": types.DiagnosticSeverity.Warning,
        "info": types.DiagnosticSeverity.Information,
    }

    def lint_document(uri: str) -> None:
        doc = server.workspace.get_text_document(uri)
        path_s = to_fs_path(uri) or uri
        path = Path(path_s)
        if path.suffix not in (".py", ".pyi", "") and doc.language_id not in ("python",):
            return
        text = doc.source
        try:
            diags = linter.lint(text, path)
        except Exception as e:  # never let one document take the server down
            log.exception("eqxlint failed on %s", uri)
            server.window_log_message(types.LogMessageParams(type=types.MessageType.Error,
                                                             message=f"eqxlint failed on {path_s}: {e}"))
            diags = []
        lines = _lines(text)
        out = []
        for d in diags:
            doc_ = registry.doc(d.code)
            out.append(
                types.Diagnostic(
                    range=types.Range(start=_position(lines, d.row, d.column),
                                      end=_position(lines, d.end_row, d.end_column)),
                    message=d.message,
                    severity=severity.get(d.severity, types.DiagnosticSeverity.Warning),
                    code=d.code,
                    code_description=types.CodeDescription(href=doc_.url) if doc_ is not None and doc_.url else None,
                    source="eqxlint",
                )
            )
        results[uri] = (text, diags, out)
        server.text_document_publish_diagnostics(
            types.PublishDiagnosticsParams(uri=uri, version=doc.version, diagnostics=out)
        )

    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls, params: types.DidOpenTextDocumentParams):
        lint_document(params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls, params: types.DidChangeTextDocumentParams):
        lint_document(params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_SAVE)
    def did_save(ls, params: types.DidSaveTextDocumentParams):
        lint_document(params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls, params: types.DidCloseTextDocumentParams):
        results.pop(params.text_document.uri, None)
        server.text_document_publish_diagnostics(
            types.PublishDiagnosticsParams(uri=params.text_document.uri, diagnostics=[])
        )

    def _overlaps(a, b) -> bool:
        return (a.start.line, a.start.character) <= (b.end.line, b.end.character) and (
            b.start.line, b.start.character) <= (a.end.line, a.end.character)

    @server.feature(
        types.TEXT_DOCUMENT_CODE_ACTION,
        types.CodeActionOptions(code_action_kinds=[types.CodeActionKind.QuickFix]),
    )
    def code_action(ls, params: types.CodeActionParams):
        uri = params.text_document.uri
        entry = results.get(uri)
        if entry is None:
            return []
        text, diags, lsp_diags = entry
        actions = []
        for d, ld in zip(diags, lsp_diags):
            if not _overlaps(ld.range, params.range):
                continue
            if d.fix is not None:
                new, applied = fixes.apply_edits(text, [d], unsafe=True)
                if applied and new != text:
                    title = f"{d.code}: {d.fix.message}" + ("" if d.fix.applicability == SAFE else " (unsafe)")
                    edits = [types.TextEdit(range=types.Range(start=_offset_position(text, e.start),
                                                              end=_offset_position(text, e.end)),
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
                        edit=types.WorkspaceEdit(changes={uri: [_minimal_edit(text, new)]}),
                    ))
        return actions

    @server.feature(types.TEXT_DOCUMENT_HOVER)
    def hover(ls, params: types.HoverParams):
        entry = results.get(params.text_document.uri)
        if entry is None:
            return None
        _, diags, lsp_diags = entry
        pos = params.position
        parts = []
        for d, ld in zip(diags, lsp_diags):
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
        logging.basicConfig(filename=os.environ["EQXLINT_LSP_LOG"], level=logging.DEBUG)
    build_server().start_io()
    return 0
