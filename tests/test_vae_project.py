"""fixtures/vae_project: a six-file Equinox VAE split the way real projects are (model package,
losses, a training script with a jitted step, a sampler class with a jitted bound method, a helper
passed to `tree_map`). Its findings are compared exactly with fixtures/vae_project/expected.json:
codes, rows, columns, severities, messages and the call chains (`trace`) of the JSON output; a run
on one file gives that file's findings; under real JAX the flagged lines misbehave as the
messages say."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
REPO = ROOT / "fixtures" / "vae_project"
FILES = ["train.py", "vae/__init__.py", "vae/losses.py", "vae/model.py", "vae/sampler.py", "vae/utils.py"]


def _cli(*args, cwd=REPO) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.pop("EQXLINT_DEBUG", None)
    proc = subprocess.run([sys.executable, "-m", "eqxlint", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=600, env=env)
    assert proc.returncode in (0, 1), proc.stderr
    assert "internal error" not in proc.stderr, proc.stderr
    return proc


def normalise(data: list, root: Path = REPO) -> list:
    """The JSON findings with paths relative to the project (the rest exactly as printed)."""
    def _rel(path: str) -> str:
        return Path(path).resolve().relative_to(root.resolve()).as_posix()

    out = []
    for d in data:
        out.append({
            "file": _rel(d["filename"]),
            "row": d["location"]["row"], "column": d["location"]["column"],
            "end_row": d["end_location"]["row"], "end_column": d["end_location"]["column"],
            "code": d["code"], "severity": d["severity"], "message": d["message"],
            "trace": None if d["trace"] is None else [
                dict(s, filename=_rel(s["filename"])) for s in d["trace"]
            ],
        })
    return sorted(out, key=lambda d: (d["file"], d["row"], d["column"], d["code"]))


def expected() -> list:
    return json.loads((REPO / "expected.json").read_text())


def test_whole_project_json_exactly():
    got = normalise(json.loads(_cli("check", ".", "--output-format", "json", "--no-cache").stdout))
    assert got == expected()


def test_json_lines_and_a_warm_cache_give_the_same(tmp_path):
    import shutil

    copy = tmp_path / "vae_project"
    shutil.copytree(REPO, copy, ignore=shutil.ignore_patterns(".eqxlint_cache"))  # the cache goes here
    cold = _cli("check", ".", "--output-format", "json-lines", cwd=copy).stdout
    warm = _cli("check", ".", "--output-format", "json-lines", cwd=copy).stdout
    assert normalise([json.loads(x) for x in cold.splitlines()], copy) == expected()
    assert warm == cold
    assert (copy / ".eqxlint_cache").exists()


@pytest.mark.parametrize("path", FILES)
def test_one_file_run_gives_that_files_findings(path):
    got = normalise(json.loads(_cli("check", path, "--output-format", "json", "--no-cache").stdout))
    assert got == [d for d in expected() if d["file"] == path]


def test_full_shows_the_chain_and_concise_stays_one_line():
    full = _cli("check", "vae/losses.py", "--output-format", "full", "--no-cache").stdout
    assert (
        "  = trace: `kl_term` called by `loss_fn` (vae/losses.py:19)\n"
        "           `loss_fn` differentiated by `eqx.filter_value_and_grad` in `step` (train.py:12)\n"
        "           `step` jitted by `eqx.filter_jit` (train.py:10)\n"
    ) in full
    concise = _cli("check", ".", "--no-cache").stdout
    lines = [line for line in concise.splitlines() if line.startswith(("train.py:", "vae/"))]
    assert len(lines) == len(expected())  # one line a finding, chain included in short
    assert any("`clip_grad` is traced: passed to `jax.tree_util.tree_map` by `step` (train.py:13)" in line
               for line in lines)
    assert "= trace:" not in concise


# --------------------------------------------------------------------------- under real JAX
def _run_under_jax(script: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True,
                          env=env, timeout=600)


_PRELUDE = """
import jax, jax.numpy as jnp, jax.random as jr
device = jax.devices(jax.default_backend())[0]
jax.config.update("jax_default_device", device)
"""


@pytest.mark.jax
def test_eqx110_line_raises_under_the_jitted_step():
    pytest.importorskip("jax")
    pytest.importorskip("equinox")
    flagged = [(d["file"], d["row"]) for d in expected() if d["code"] == "EQX110"]
    assert ("vae/losses.py", 20) in flagged
    proc = _run_under_jax(_PRELUDE + """
import train
from vae.model import init_model
model = init_model(jr.PRNGKey(0))
x = jax.device_put(jnp.ones((8,)), device)
try:
    train.step(model, x, jr.PRNGKey(1), 1e-3)
except jax.errors.TracerBoolConversionError as e:
    tb = e.__traceback__
    rows = []
    while tb is not None:
        if tb.tb_frame.f_code.co_filename.endswith("losses.py"):
            rows.append(tb.tb_lineno)
        tb = tb.tb_next
    print("RAISED", rows[-1])
else:
    print("NO ERROR")
""")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "RAISED 20" in proc.stdout, proc.stdout + proc.stderr[-3000:]


@pytest.mark.jax
def test_eqx209_prints_run_once_per_trace():
    pytest.importorskip("jax")
    pytest.importorskip("equinox")
    flagged = {(d["file"], d["row"]) for d in expected() if d["code"] == "EQX209"}
    assert {("vae/losses.py", 5), ("vae/utils.py", 6), ("vae/sampler.py", 13)} == flagged
    # The step with the EQX110 line fixed (as the message advises), so the prints can be counted.
    proc = _run_under_jax(_PRELUDE + """
import vae.losses as L
def loss_fn(model, x, key):
    x_hat, mu, logvar = model(x, key)
    loss = L.recon_term(x, x_hat) + L.kl_term(mu, logvar)
    return jnp.where(jnp.isnan(loss), jnp.zeros(()), loss)
L.loss_fn = loss_fn
import train
train.loss_fn = loss_fn
from vae.model import init_model
from vae.sampler import Sampler
model = init_model(jr.PRNGKey(0))
x = jax.device_put(jnp.ones((8,)), device)
for i in range(3):
    model, loss = train.step(model, x + i, jr.PRNGKey(i), 1e-3)
import equinox as eqx
print("LEAVES", len(jax.tree_util.tree_leaves(eqx.filter(model, eqx.is_array))))
print("STEPS DONE")
draw = jax.jit(Sampler(model).sample, static_argnums=1)
try:
    draw(jr.PRNGKey(0), 2)
except jax.errors.TracerBoolConversionError:
    print("SAMPLER WHILE RAISED")
""")
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    steps, sampler = out.split("STEPS DONE")
    # Three calls, one trace: the loss term's print ran once, the tree_map helper's once per leaf.
    assert steps.count("computing KL for") == 1
    leaves = int(steps.split("LEAVES ")[1].split()[0])
    assert steps.count("clipping a leaf of shape") == leaves > 0
    assert "Traced" in sampler or "Tracer" in sampler  # the sampler's print shows a tracer
    assert sampler.count("sampled") == 1
    assert "SAMPLER WHILE RAISED" in sampler  # and its `while` (EQX110, line 14) raises
