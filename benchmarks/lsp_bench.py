"""Language-server latency, measured as an editor sees it: `eqxlint server` is started as a
subprocess and driven over stdio (JSON-RPC, Content-Length framing), in a project made of
fixtures/vae_project plus one generated 2,000-line module that imports the project's Module
class (so the project phase has cross-file work to do).

    python benchmarks/lsp_bench.py                 # 20 single edits, 5 bursts
    python benchmarks/lsp_bench.py --lines 4000 --edits 40 --bursts 10

Measured:

- open: didOpen -> first publishDiagnostics (loads the project through the cache, lints the file);
- edit: one didChange (a keystroke, as an incremental change) after a pause -> the publishDiagnostics of that version (median, max);
- burst: 20 keystrokes 30 ms apart -> how many publishes the burst caused, and the time from the
  last keystroke to the publish of the last version;
- hover during the burst: a hover request sent after the 10th keystroke -> its reply.

Run by hand (figures in docs/editors.md), never as a test."""

from __future__ import annotations

import argparse
import json
import os
import queue
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

HEAD = '''"""A large training module."""

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
from jax import lax

from vae.model import VAE

'''

BLOCK = '''
def make_data_{i}(key, n, length):
    k1, k2 = jr.split(key)
    xs = jr.normal(k1, (n, length, 2))
    noise = jr.normal(k2, (n, length, 1))
    ys = jnp.cumsum(xs[..., :1], axis=1) + 0.1 * noise
    return xs, ys


def loss_fn_{i}(model, xs, ys):
    preds = jax.vmap(model, in_axes=0)(xs)
    return jnp.mean((preds - ys) ** 2)


@eqx.filter_jit
def train_step_{i}(model: VAE, opt_state, xs, ys):
    loss, grads = eqx.filter_value_and_grad(loss_fn_{i})(model, xs, ys)
    updates = jax.tree_util.tree_map(lambda g: -1e-3 * g, grads)
    return eqx.apply_updates(model, updates), opt_state, loss


def scan_{i}(h0, xs):
    def body(h, x):
        h = jnp.tanh(h + x)
        return h, h
    return lax.scan(body, h0, xs)


class Block{i}(eqx.Module):
    weight: jax.Array
    bias: jax.Array

    def __init__(self, n, *, key):
        wk, bk = jr.split(key)
        self.weight = jr.normal(wk, (n, n))
        self.bias = jr.normal(bk, (n,))

    def __call__(self, x):
        return jnp.tanh(self.weight @ x + self.bias)
'''

TAIL = '''

@jax.jit
def predict(model: VAE, x):
    print("predicting", x)
    return model(x)
'''


def big_module(lines: int) -> str:
    parts, i = [HEAD], 0
    while sum(p.count("\n") for p in parts) + TAIL.count("\n") < lines:
        parts.append(BLOCK.format(i=i))
        i += 1
    text = "".join(parts)
    keep = lines - TAIL.count("\n")
    return "\n".join(text.split("\n")[:keep]) + TAIL


class Client:
    def __init__(self, cwd: Path):
        self.proc = subprocess.Popen([sys.executable, "-m", "eqxlint", "server"], cwd=cwd,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self.messages: queue.Queue = queue.Queue()
        self.skipped: list = []  # (time, message) passed over by `wait`
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
            self.messages.put((time.perf_counter(), json.loads(body)))

    def send(self, msg: dict) -> float:
        data = json.dumps(dict(jsonrpc="2.0", **msg)).encode("utf-8")
        t = time.perf_counter()
        self.proc.stdin.write(f"Content-Length: {len(data)}\r\n\r\n".encode("ascii") + data)
        self.proc.stdin.flush()
        return t

    def request(self, method, params) -> int:
        self.next_id += 1
        self.send({"id": self.next_id, "method": method, "params": params})
        return self.next_id

    def notify(self, method, params) -> float:
        return self.send({"method": method, "params": params})

    def wait(self, pred, timeout: float = 120.0):
        while True:
            t, msg = self.messages.get(timeout=timeout)
            if pred(msg):
                return t, msg
            self.skipped.append((t, msg))

    def drain(self) -> list:
        out, self.skipped = self.skipped, []
        while True:
            try:
                out.append(self.messages.get_nowait())
            except queue.Empty:
                return out


def is_publish(uri, version=None):
    return lambda m: (m.get("method") == "textDocument/publishDiagnostics" and m["params"]["uri"] == uri
                      and (version is None or m["params"].get("version") == version))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lines", type=int, default=2000)
    ap.add_argument("--edits", type=int, default=20)
    ap.add_argument("--bursts", type=int, default=5)
    ap.add_argument("--keystrokes", type=int, default=20)
    ap.add_argument("--interval", type=float, default=0.030)
    args = ap.parse_args(argv)

    tmp = Path(tempfile.mkdtemp(prefix="eqxlint-lsp-bench-"))
    project = tmp / "proj"
    shutil.copytree(ROOT / "fixtures" / "vae_project", project)
    text = big_module(args.lines)
    path = project / "big.py"
    path.write_text(text)
    uri = path.as_uri()
    # Warm the cache as a user who ran `eqxlint check .` once would have.
    subprocess.run([sys.executable, "-m", "eqxlint", "check", "."], cwd=project, capture_output=True)

    c = Client(project)
    try:
        c.request("initialize", {"processId": os.getpid(), "rootUri": project.as_uri(), "capabilities": {}})
        c.wait(lambda m: m.get("id") == 1)
        c.notify("initialized", {})
        t0 = c.notify("textDocument/didOpen", {"textDocument": {"uri": uri, "languageId": "python",
                                                                "version": 1, "text": text}})
        t1, msg = c.wait(is_publish(uri, 1))
        codes = sorted({d["code"] for d in msg["params"]["diagnostics"]})
        open_ms = (t1 - t0) * 1000
        version = 1
        lines = text.split("\n")
        target = len(lines) // 2

        def edit(v: int) -> float:
            """One keystroke, sent as editors send it (incremental sync): a space typed at the
            end of a line in the middle of the file, or deleted again."""
            end = len(lines[target])
            if lines[target].endswith(" "):
                lines[target] = lines[target][:-1]
                change = {"range": {"start": {"line": target, "character": end - 1},
                                    "end": {"line": target, "character": end}}, "text": ""}
            else:
                lines[target] += " "
                change = {"range": {"start": {"line": target, "character": end},
                                    "end": {"line": target, "character": end}}, "text": " "}
            return c.notify("textDocument/didChange", {"textDocument": {"uri": uri, "version": v},
                                                       "contentChanges": [change]})

        # Single edits after a pause.
        single = []
        for _ in range(args.edits):
            time.sleep(0.3)
            version += 1
            ts = edit(version)
            te, _ = c.wait(is_publish(uri, version))
            single.append((te - ts) * 1000)

        # Bursts of keystrokes with a hover in the middle.
        bursts = []
        for _ in range(args.bursts):
            time.sleep(0.5)
            c.drain()
            hover_id = None
            hover_sent = None
            for k in range(args.keystrokes):
                version += 1
                last = edit(version)
                if k == args.keystrokes // 2:
                    hover_id = c.request("textDocument/hover", {"textDocument": {"uri": uri},
                                                                "position": {"line": 0, "character": 0}})
                    hover_sent = time.perf_counter()
                time.sleep(args.interval)
            t_final, _ = c.wait(is_publish(uri, version))
            time.sleep(0.3)
            seen = c.drain()
            publishes = 1 + sum(1 for _, m in seen if is_publish(uri)(m))
            hover_t = None
            for t, m in seen:
                if m.get("id") == hover_id:
                    hover_t = t
            bursts.append({"final_ms": (t_final - last) * 1000, "publishes": publishes,
                           "hover_ms": (hover_t - hover_sent) * 1000 if hover_t is not None else float("nan")})
        c.request("shutdown", None)
        c.notify("exit", None)
        c.proc.wait(timeout=30)
    finally:
        if c.proc.poll() is None:
            c.proc.kill()
        shutil.rmtree(tmp, ignore_errors=True)

    med = statistics.median
    print(f"file: {args.lines} lines in fixtures/vae_project; findings at open: {', '.join(codes)}")
    print(f"open -> diagnostics: {open_ms:.0f} ms")
    print(f"didChange -> publishDiagnostics, {len(single)} single edits: median {med(single):.0f} ms, "
          f"min {min(single):.0f}, max {max(single):.0f}")
    finals = [b["final_ms"] for b in bursts]
    hovers = [b["hover_ms"] for b in bursts]
    print(f"{args.keystrokes} keystrokes {args.interval * 1000:.0f} ms apart, {len(bursts)} bursts: "
          f"publishes per burst {[b['publishes'] for b in bursts]}; last keystroke -> final publish "
          f"median {med(finals):.0f} ms, max {max(finals):.0f}")
    print(f"hover during a burst: median {med(hovers):.1f} ms, max {max(hovers):.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
