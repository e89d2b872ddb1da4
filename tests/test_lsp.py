"""Drive `eqxlint server` as an editor does: JSON-RPC with Content-Length framing over the
stdio of a subprocess, no mocks."""

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

SOURCE = '''import jax


@jax.jit
def step(x):
    print("x is", x)
    return x + 1
'''


class Client:
    def __init__(self, cwd: Path):
        env = dict(os.environ)
        env.pop("EQXLINT_DEBUG", None)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "eqxlint", "server"], cwd=cwd, env=env,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        self.messages: queue.Queue = queue.Queue()
        self.next_id = 0
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        out = self.proc.stdout
        while True:
            headers = {}
            while True:
                line = out.readline()
                if not line:
                    return
                line = line.decode("ascii").strip()
                if not line:
                    break
                k, v = line.split(":", 1)
                headers[k.strip().lower()] = v.strip()
            body = out.read(int(headers["content-length"]))
            self.messages.put(json.loads(body))

    def send(self, msg: dict) -> None:
        data = json.dumps(dict(jsonrpc="2.0", **msg)).encode("utf-8")
        self.proc.stdin.write(f"Content-Length: {len(data)}\r\n\r\n".encode("ascii") + data)
        self.proc.stdin.flush()

    def request(self, method: str, params) -> dict:
        self.next_id += 1
        rid = self.next_id
        self.send({"id": rid, "method": method, "params": params})
        msg = self.wait(lambda m: m.get("id") == rid and "method" not in m)
        assert "error" not in msg, msg
        return msg["result"]

    def notify(self, method: str, params) -> None:
        self.send({"method": method, "params": params})

    def wait(self, pred, timeout: float = 60.0) -> dict:
        while True:
            try:
                msg = self.messages.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError("no matching message from the server") from None
            if pred(msg):
                return msg


@pytest.fixture
def client(tmp_path):
    c = Client(tmp_path)
    yield c
    if c.proc.poll() is None:
        c.proc.kill()
    c.proc.wait(timeout=10)


def test_editor_session(client, tmp_path):
    (tmp_path / "pyproject.toml").write_text("[tool.eqxlint]\n")
    path = tmp_path / "train.py"
    path.write_text(SOURCE)
    uri = path.as_uri()
    init = client.request("initialize", {"processId": os.getpid(), "rootUri": tmp_path.as_uri(),
                                          "capabilities": {}})
    caps = init["capabilities"]
    assert caps.get("hoverProvider") and caps.get("codeActionProvider")
    client.notify("initialized", {})
    client.notify("textDocument/didOpen", {"textDocument": {"uri": uri, "languageId": "python", "version": 1,
                                                            "text": SOURCE}})
    pub = client.wait(lambda m: m.get("method") == "textDocument/publishDiagnostics")
    diags = pub["params"]["diagnostics"]
    assert pub["params"]["uri"] == uri
    assert [d["code"] for d in diags] == ["EQX209"]
    d = diags[0]
    assert d["range"]["start"] == {"line": 5, "character": 4}
    assert d["source"] == "eqxlint"

    actions = client.request("textDocument/codeAction", {
        "textDocument": {"uri": uri}, "range": d["range"], "context": {"diagnostics": [d]}})
    titles = [a["title"] for a in actions]
    fix = next(a for a in actions if "jax.debug.print" in a["title"])
    edits = fix["edit"]["changes"][uri]
    assert edits == [{"range": d["range"], "newText": 'jax.debug.print("x is {}", x)'}]
    noqa = next(a for a in actions if "noqa" in a["title"])
    assert noqa["edit"]["changes"][uri] == [{
        "range": {"start": {"line": 5, "character": 20}, "end": {"line": 5, "character": 20}},
        "newText": "  # noqa: EQX209"}], titles

    hover = client.request("textDocument/hover", {"textDocument": {"uri": uri},
                                                  "position": {"line": 5, "character": 6}})
    assert hover["contents"]["kind"] == "markdown"
    assert "EQX209" in hover["contents"]["value"] and "print" in hover["contents"]["value"]
    assert client.request("textDocument/hover", {"textDocument": {"uri": uri},
                                                 "position": {"line": 0, "character": 0}}) is None

    # An edit that removes the problem clears the diagnostics.
    fixed = SOURCE.replace('print("x is", x)', 'jax.debug.print("x is {}", x)')
    client.notify("textDocument/didChange", {"textDocument": {"uri": uri, "version": 2},
                                             "contentChanges": [{"text": fixed}]})
    pub = client.wait(lambda m: m.get("method") == "textDocument/publishDiagnostics")
    assert pub["params"]["diagnostics"] == []
    client.notify("textDocument/didSave", {"textDocument": {"uri": uri}})
    pub = client.wait(lambda m: m.get("method") == "textDocument/publishDiagnostics")
    assert pub["params"]["diagnostics"] == []

    assert client.request("shutdown", None) is None
    client.notify("exit", None)
    assert client.proc.wait(timeout=20) == 0


def test_server_modules_never_import_jax(tmp_path):
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from eqxlint.app import lsp\n"
        "server = lsp.build_server()\n"
        "diags = lsp.Linter().lint('import jax\\n@jax.jit\\ndef f(x):\\n    print(x)\\n', Path('t.py'))\n"
        "assert [d.code for d in diags] == ['EQX209'], diags\n"
        "assert 'jax' not in sys.modules, 'jax was imported'\n"
    )
    r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
