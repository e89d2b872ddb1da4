"""`eqxlint server` against the LSP protocol itself (issue 16), whatever the server's internals:
JSON-RPC with Content-Length framing over the stdio of a subprocess, as an editor speaks it.

- Positions are UTF-16 code units unless the client negotiated otherwise (LSP 3.17
  `general.positionEncodings`; these clients negotiate nothing): a character outside the Basic
  Multilingual Plane (an emoji) counts two.
- The configuration that applies to the document's path (`[tool.eqxlint]` in the project's
  pyproject.toml) is honoured, wherever the server was started from.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
from pathlib import Path

import pytest

pytest.importorskip("pygls")
pytest.importorskip("lsprotocol")

# `s = "🙂"; ` is 9 characters but 10 UTF-16 code units; `print("🙂", x)` is 13 and 14.
SOURCE = '''import jax
import equinox as eqx


@jax.jit
def step(model: eqx.nn.MLP, x):
    s = "\U0001F642"; print("\U0001F642", x)
    return model(x)
'''
PRINT_ROW = 6  # 0-based line of the print
PRINT_START = 4 + 10  # UTF-16 units before `print` (13 characters)
PRINT_END = PRINT_START + 14


class Server:
    def __init__(self, cwd: Path):
        env = dict(os.environ)
        env.pop("EQXLINT_DEBUG", None)
        self.proc = subprocess.Popen([sys.executable, "-m", "eqxlint", "server"], cwd=cwd, env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self.inbox: queue.Queue = queue.Queue()
        self.ids = 0
        threading.Thread(target=self._reader, daemon=True).start()

    def _reader(self) -> None:
        out = self.proc.stdout
        while True:
            length = None
            while True:
                line = out.readline()
                if not line:
                    return
                line = line.strip()
                if not line:
                    break
                name, _, value = line.decode("ascii").partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            self.inbox.put(json.loads(out.read(length)))

    def _send(self, msg: dict) -> None:
        body = json.dumps({"jsonrpc": "2.0", **msg}).encode("utf-8")
        self.proc.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        self.proc.stdin.flush()

    def wait(self, pred, timeout: float = 120.0) -> dict:
        while True:
            try:
                msg = self.inbox.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError("the server sent no such message") from None
            if pred(msg):
                return msg

    def request(self, method: str, params) -> object:
        self.ids += 1
        rid = self.ids
        self._send({"id": rid, "method": method, "params": params})
        msg = self.wait(lambda m: m.get("id") == rid and "method" not in m)
        assert "error" not in msg, msg
        return msg["result"]

    def notify(self, method: str, params) -> None:
        self._send({"method": method, "params": params})

    def start(self, root: Path) -> dict:
        result = self.request("initialize", {"processId": os.getpid(), "rootUri": root.as_uri(),
                                             "workspaceFolders": [{"uri": root.as_uri(), "name": root.name}],
                                             "capabilities": {}})
        self.notify("initialized", {})
        return result

    def diagnostics(self, path: Path, text: str) -> list:
        uri = path.as_uri()
        self.notify("textDocument/didOpen", {"textDocument": {"uri": uri, "languageId": "python",
                                                              "version": 1, "text": text}})
        msg = self.wait(lambda m: m.get("method") == "textDocument/publishDiagnostics"
                        and m["params"]["uri"] == uri)
        return msg["params"]["diagnostics"]

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.request("shutdown", None)
                self.notify("exit", None)
                self.proc.wait(timeout=20)
            except Exception:
                self.proc.kill()
                self.proc.wait(timeout=10)


@pytest.fixture
def server(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    s = Server(elsewhere)
    yield s
    s.close()


def _project(root: Path, config: str) -> Path:
    root.mkdir()
    (root / "pyproject.toml").write_text(config)
    path = root / "train.py"
    path.write_text(SOURCE, encoding="utf-8")
    return path


def test_positions_are_utf16_code_units(server, tmp_path):
    path = _project(tmp_path / "proj", "[tool.eqxlint]\n")
    init = server.start(path.parent)
    assert init["capabilities"].get("positionEncoding", "utf-16") == "utf-16"
    diags = server.diagnostics(path, SOURCE)
    prints = [d for d in diags if d["code"] == "EQX209"]
    assert len(prints) == 1, diags
    assert prints[0]["range"] == {"start": {"line": PRINT_ROW, "character": PRINT_START},
                                  "end": {"line": PRINT_ROW, "character": PRINT_END}}
    # The quick fix edits exactly that range (in the same units).
    actions = server.request("textDocument/codeAction", {
        "textDocument": {"uri": path.as_uri()}, "range": prints[0]["range"],
        "context": {"diagnostics": prints}})
    edits = [e for a in actions if "debug.print" in a["title"] for e in a["edit"]["changes"][path.as_uri()]]
    assert [e["range"] for e in edits] == [prints[0]["range"]], actions


def test_project_configuration_is_honoured(server, tmp_path):
    plain = _project(tmp_path / "plain", "[tool.eqxlint]\n")
    quiet = _project(tmp_path / "quiet", '[tool.eqxlint]\nignore = ["EQX209"]\n')
    server.start(tmp_path)
    codes_plain = sorted(d["code"] for d in server.diagnostics(plain, SOURCE))
    codes_quiet = sorted(d["code"] for d in server.diagnostics(quiet, SOURCE))
    assert "EQX209" in codes_plain and "EQX101" in codes_plain
    assert "EQX209" not in codes_quiet
    assert codes_quiet == [c for c in codes_plain if c != "EQX209"]
