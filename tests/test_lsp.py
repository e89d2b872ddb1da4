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
from typing import Optional

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
        self.received: list = []  # every message, in order
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
            msg = json.loads(body)
            self.received.append(msg)
            self.messages.put(msg)

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


# ---------------------------------------------------------------------------- projects
import shutil  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent

OPS = '''from jax.extend.core import Primitive
from jax.interpreters import ad, mlir

scale_p = Primitive("scale")


def _scale_impl(x, *, c):
    return x * c


def _scale_jvp(primals, tangents, *, c):
    (x,), (t,) = primals, tangents
    return scale_p.bind(x, c=c), scale_p.bind(t, c=c)


scale_p.def_impl(_scale_impl)
scale_p.def_abstract_eval(lambda x, *, c: x)
mlir.register_lowering(scale_p, mlir.lower_fun(_scale_impl, multiple_results=False))
ad.primitive_jvps[scale_p] = _scale_jvp
'''

TRANSPOSE = '''from jax.interpreters import ad

from prims.ops import scale_p

ad.primitive_transposes[scale_p] = lambda ct, x, *, c: [scale_p.bind(ct, c=c)]
'''

BATCHING = '''"""Batching rules (none yet)."""
'''

BATCHING_EDITED = '''"""Batching rules."""
from jax.interpreters import batching

from prims.ops import scale_p


def _scale_batch(args, dims, *, c):
    (x,), (d,) = args, dims
    return scale_p.bind(x, c=c), d


batching.primitive_batchers[scale_p] = _scale_batch
'''


def _project(tmp_path: Path) -> Path:
    """fixtures/vae_project (a Module class in vae/model.py, `jax.jit` on a `model: VAE` in
    train.py) plus a primitive whose transpose is registered in another file."""
    project = tmp_path / "proj"
    shutil.copytree(ROOT / "fixtures" / "vae_project", project)
    (project / "prims").mkdir()
    (project / "prims" / "__init__.py").write_text("")
    (project / "prims" / "ops.py").write_text(OPS)
    (project / "prims" / "transpose.py").write_text(TRANSPOSE)
    (project / "prims" / "batching_rules.py").write_text(BATCHING)
    return project


def _start(client, root: Path) -> None:
    client.request("initialize", {"processId": os.getpid(), "rootUri": root.as_uri(), "capabilities": {}})
    client.notify("initialized", {})


def _open(client, path: Path, text: Optional[str] = None) -> None:
    client.notify("textDocument/didOpen", {"textDocument": {
        "uri": path.as_uri(), "languageId": "python", "version": 1,
        "text": path.read_text() if text is None else text}})


def _change(client, path: Path, version: int, text: str) -> None:
    client.notify("textDocument/didChange", {"textDocument": {"uri": path.as_uri(), "version": version},
                                             "contentChanges": [{"text": text}]})


def _published(client, path: Path, version: Optional[int] = None) -> list:
    uri = path.as_uri()
    msg = client.wait(lambda m: m.get("method") == "textDocument/publishDiagnostics"
                      and m["params"]["uri"] == uri
                      and (version is None or m["params"].get("version") == version))
    return msg["params"]["diagnostics"]


def _as_cli(path: Path, cwd: Path) -> list:
    """What `eqxlint check path` gives, as LSP ranges (the project's text is ASCII)."""
    from eqxlint.app.api import check_paths

    old = os.getcwd()
    os.chdir(cwd)
    try:
        diags = check_paths([path.relative_to(cwd)], cache=False).diagnostics
    finally:
        os.chdir(old)
    return [(d.code, d.row - 1, d.column - 1, d.end_row - 1, d.end_column - 1, d.message) for d in diags]


def _as_lsp(diags: list) -> list:
    return [(d["code"], d["range"]["start"]["line"], d["range"]["start"]["character"],
             d["range"]["end"]["line"], d["range"]["end"]["character"], d["message"]) for d in diags]


def test_server_gives_what_check_gives_in_a_project(tmp_path):
    project = _project(tmp_path)
    client = Client(tmp_path)  # started outside the project: configuration is found per file
    try:
        _start(client, project)
        train, ops, batching = project / "train.py", project / "prims" / "ops.py", project / "prims" / "batching_rules.py"

        # The Module class lives in vae/model.py: the cross-file EQX101 is published.
        _open(client, train)
        got = _published(client, train)
        assert "EQX101" in [d["code"] for d in got]
        assert _as_lsp(got) == _as_cli(train, project)

        # The transpose is registered in prims/transpose.py: no (false) EQX302.
        _open(client, ops)
        got = _published(client, ops)
        assert [d["code"] for d in got] == ["EQX303"]
        assert _as_lsp(got) == _as_cli(ops, project)

        # An unsaved edit of another open document registers the batching rule: ops.py's
        # diagnostics are republished without EQX303.
        _open(client, batching)
        assert _published(client, batching) == []
        _change(client, batching, 2, BATCHING_EDITED)
        assert _published(client, ops) == []

        # Closed without saving: the file on disk has no batching rule again.
        client.notify("textDocument/didClose", {"textDocument": {"uri": batching.as_uri()}})
        assert [d["code"] for d in _published(client, ops)] == ["EQX303"]

        assert client.request("shutdown", None) is None
        client.notify("exit", None)
        assert client.proc.wait(timeout=20) == 0
    finally:
        if client.proc.poll() is None:
            client.proc.kill()


def test_broken_configuration_is_shown_and_the_last_valid_one_kept(client, tmp_path):
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text('[tool.eqxlint]\nignore = ["EQX209"]\n')
    path = tmp_path / "train.py"
    path.write_text(SOURCE)
    _start(client, tmp_path)
    _open(client, path, SOURCE)
    assert _published(client, path, 1) == []  # EQX209 ignored by the configuration

    pyproject.write_text('[tool.eqxlint]\nignore = ["EQX209"\n')  # invalid TOML
    _change(client, path, 2, SOURCE + "\n")
    shown = client.wait(lambda m: m.get("method") == "window/showMessage")
    assert shown["params"]["type"] == 1  # Error
    assert "pyproject.toml" in shown["params"]["message"] and "last valid settings" in shown["params"]["message"]
    assert _published(client, path, 2) == []  # still ignored: the last valid settings

    pyproject.write_text("[tool.eqxlint]\n")  # fixed, without the ignore
    _change(client, path, 3, SOURCE)
    assert [d["code"] for d in _published(client, path, 3)] == ["EQX209"]
    assert not any(m.get("method") == "window/showMessage" for m in client.received[client.received.index(shown) + 1:])


def _big_source(n_functions: int = 150) -> str:
    parts = ["import jax\nimport jax.numpy as jnp\n\n"]
    for i in range(n_functions):
        parts.append(f"\n@jax.jit\ndef step_{i}(x, y):\n    z = jnp.tanh(x @ y + {i})\n"
                     f"    w = jnp.sum(z * z, axis=0)\n    return z, w\n\n")
    parts.append('\n@jax.jit\ndef last(x):\n    print("x is", x)\n    return x\n')
    return "".join(parts)


def test_edits_are_debounced_and_stale_runs_never_publish(client, tmp_path):
    (tmp_path / "pyproject.toml").write_text("[tool.eqxlint]\n")
    path = tmp_path / "big.py"
    text = _big_source()
    path.write_text(text)
    _start(client, tmp_path)
    _open(client, path, text)
    assert [d["code"] for d in _published(client, path, 1)] == ["EQX209"]
    import time

    time.sleep(0.3)  # a pause: the next edit is linted at once
    for v in range(2, 13):  # then a burst of keystrokes, all within the debounce interval
        text = text.replace(f"+ {v})", f"+ {v} )")
        _change(client, path, v, text)
    assert [d["code"] for d in _published(client, path, 12)] == ["EQX209"]
    client.request("textDocument/hover", {"textDocument": {"uri": path.as_uri()},
                                          "position": {"line": 0, "character": 0}})
    pubs = [m for m in client.received if m.get("method") == "textDocument/publishDiagnostics"]
    # One publish for the opening and one for the burst: the run that started at version 2 was
    # stale before it finished and published nothing, the keystrokes were linted once.
    assert [p["params"]["version"] for p in pubs] == [1, 12]


def test_hover_is_answered_while_a_lint_runs(client, tmp_path):
    (tmp_path / "pyproject.toml").write_text("[tool.eqxlint]\n")
    path = tmp_path / "big.py"
    text = _big_source(300)
    path.write_text(text)
    _start(client, tmp_path)
    _open(client, path, text)
    diags = _published(client, path, 1)
    import time

    time.sleep(0.3)
    _change(client, path, 2, text.replace("+ 7)", "+ 8)"))
    hover = client.request("textDocument/hover", {"textDocument": {"uri": path.as_uri()},
                                                  "position": diags[0]["range"]["start"]})
    assert "EQX209" in hover["contents"]["value"]
    publish = _published(client, path, 2)
    order = [m for m in client.received if m.get("method") == "textDocument/publishDiagnostics"
             or ("result" in m and m["result"] and "contents" in m["result"])]
    # The hover's reply came before the lint of the edit was published: it did not wait.
    assert "contents" in order[-2]["result"] and order[-1]["params"]["diagnostics"] == publish


def test_columns_follow_the_negotiated_position_encoding(tmp_path):
    (tmp_path / "pyproject.toml").write_text("[tool.eqxlint]\n")
    src = 'import jax\n\n\n@jax.jit\ndef step(x):\n    s = "😀"; print(s, x)\n    return x\n'
    path = tmp_path / "emoji.py"
    path.write_text(src, encoding="utf-8")
    for encodings, column in ((None, 14), (["utf-8", "utf-16"], 16), (["utf-32"], 13)):
        c = Client(tmp_path)
        try:
            caps = {} if encodings is None else {"general": {"positionEncodings": encodings}}
            init = c.request("initialize", {"processId": os.getpid(), "rootUri": tmp_path.as_uri(),
                                            "capabilities": caps})
            assert init["capabilities"].get("positionEncoding", "utf-16") == (encodings or ["utf-16"])[0]
            c.notify("initialized", {})
            _open(c, path, src)
            (d,) = _published(c, path)
            assert d["range"]["start"] == {"line": 5, "character": column}, encodings
        finally:
            c.proc.kill()
            c.proc.wait(timeout=10)
