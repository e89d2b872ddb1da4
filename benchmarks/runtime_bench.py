"""Benchmarks for `eqxlint.runtime` (not a test; prints Markdown tables).

    python benchmarks/runtime_bench.py                 # everything, in one run
    python benchmarks/runtime_bench.py --only scan     # checkpointed_scan table
    python benchmarks/runtime_bench.py --only grad     # checkpointed_grad call overhead
    python benchmarks/runtime_bench.py --only primitive

1. Reverse-mode memory and run time of a length-n scan with body `tanh(c @ W + x)`,
   `jax.grad` with respect to `(W, init, xs)`, for `lax.scan`, `lax.scan` with
   `jax.checkpoint` on the body, `equinox.internal.scan(..., kind="checkpointed")` and
   `eqxlint.runtime.checkpointed_scan` (the default `"auto"` schedule, and
   `"binomial"`): a 64x64 float32 carry at n = 256, 1024, 4096, 16384 and a float32[16]
   carry at n = 4096. Memory is XLA's `compiled.memory_analysis().temp_size_in_bytes`,
   also given in carries; time is the minimum over interleaved rounds (each round runs
   every method once), so that load from other processes affects every method alike.
   Each row checks the targets: time <= 1.3x `lax.scan` (1.5x for the small carry) and
   memory <= Equinox's checkpointed scan.
2. `checkpointed_grad` called outside `jit`: first call and later calls, against
   `jax.grad`.
3. The jitted run time and compiled HLO size of a `define_primitive` op against its
   plain `impl`.
"""

import argparse
import math
import os
import statistics
import sys
import time

import jax
import jax.lax as lax
import jax.numpy as jnp
import jax.random as jr


sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import equinox.internal as eqxi  # noqa: E402

from eqxlint.runtime import (  # noqa: E402
    checkpointed_grad,
    checkpointed_scan,
    define_primitive,
    scan_schedule,
)


def _time(fn, *args, repeats: int, reduce=statistics.median) -> float:
    jax.block_until_ready(fn(*args))
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - t0)
    return reduce(times)


SCANS = {
    "lax.scan": lambda f, init, xs: lax.scan(f, init, xs),
    "lax.scan + jax.checkpoint(body)": lambda f, init, xs: lax.scan(jax.checkpoint(f), init, xs),
    "equinox.internal.scan(checkpointed)": lambda f, init, xs: eqxi.scan(f, init, xs, kind="checkpointed"),
    "checkpointed_scan (auto)": lambda f, init, xs: checkpointed_scan(f, init, xs),
    "checkpointed_scan (binomial)": lambda f, init, xs: checkpointed_scan(f, init, xs, checkpoints="binomial"),
}
OURS = "checkpointed_scan (auto)"
EQX = "equinox.internal.scan(checkpointed)"
CASES = [((64, 64), n, 1.3) for n in (256, 1024, 4096, 16384)] + [((16,), 4096, 1.5)]


def _scan_case(shape, n, rounds):
    """Compile every method for one (carry shape, n); return {name: (temp, time)}."""
    k1, k2 = jr.split(jr.key(0))
    d = shape[-1]
    W = jr.normal(k1, (d, d)) / d**0.5
    init = jnp.ones(shape)
    xs = jr.normal(k2, (n,) + shape)
    compiled = {}
    for name, scan in SCANS.items():

        def loss(W, init, xs, scan=scan):
            c, _ = scan(lambda c, x: (jnp.tanh(c @ W + x), None), init, xs)
            return jnp.sum(c)

        c = jax.jit(jax.grad(loss, argnums=(0, 1, 2))).lower(W, init, xs).compile()
        jax.block_until_ready(c(W, init, xs))
        compiled[name] = c
    best = {name: math.inf for name in compiled}
    for _ in range(rounds):
        for name, c in compiled.items():
            t0 = time.perf_counter()
            jax.block_until_ready(c(W, init, xs))
            best[name] = min(best[name], time.perf_counter() - t0)
    return {name: (c.memory_analysis().temp_size_in_bytes, best[name]) for name, c in compiled.items()}


def bench_scan(cases, rounds):
    print("## checkpointed_scan: jax.grad of a scan with body tanh(c @ W + x)")
    print(
        f"backend: {jax.default_backend()}, {jax.devices()[0].device_kind}, jax {jax.__version__}, "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start; "
        f"time = min over {rounds} interleaved rounds\n"
    )
    print("| carry | n | method | temp bytes | temp (carries) | time (ms) | time / lax.scan | targets |")
    print("|---|---:|---|---:|---:|---:|---:|---|")
    for shape, n, time_target in cases:
        carry = math.prod(shape) * 4
        label = "x".join(map(str, shape)) + " f32"
        results = _scan_case(shape, n, rounds)
        base = results["lax.scan"][1]
        eqx_temp = results[EQX][0]
        for name, (temp, t) in results.items():
            verdict = ""
            if name == OURS:
                ok_t = t / base <= time_target
                ok_m = temp <= eqx_temp
                verdict = (
                    f"time <= {time_target}x: {'met' if ok_t else 'MISSED'}; "
                    f"memory <= Equinox: {'met' if ok_m else 'MISSED'}"
                )
            print(
                f"| {label} | {n} | {name} | {temp:,} | {temp / carry:.1f} | {t * 1e3:.2f} | "
                f"{t / base:.2f} | {verdict} |"
            )
        auto = scan_schedule(n, "auto", carry_bytes=carry)
        binomial = scan_schedule(n, "binomial")
        print(f"| {label} | {n} | (schedules: auto {auto}, binomial {binomial}) | | | | | |")
    print(f"\nload average {os.getloadavg()[0]:.1f} at the end\n")


def bench_grad(repeats, n=1024, d=64):
    print("## checkpointed_grad called outside jit (plan and compiled gradient cached per signature)")
    print(f"backend: {jax.default_backend()}, jax {jax.__version__}; scan of n={n} steps, carry {d}x{d} f32\n")

    def loss(W, init, xs):
        c, _ = lax.scan(lambda c, x: (jnp.tanh(c @ W + x), None), init, xs)
        return jnp.sum(c)

    k1, k2 = jr.split(jr.key(1))
    args = (jr.normal(k1, (d, d)) / d**0.5, jnp.ones((d, d)), jr.normal(k2, (n, d, d)))
    print("| gradient | first call (s) | later calls, median (s) |")
    print("|---|---:|---:|")
    for name, g in [("jax.grad(loss)", jax.grad(loss)), ("checkpointed_grad(loss)", checkpointed_grad(loss))]:
        t0 = time.perf_counter()
        jax.block_until_ready(g(*args))
        first = time.perf_counter() - t0
        later = _time(g, *args, repeats=repeats)
        print(f"| {name} | {first:.3f} | {later:.3f} |")
    print()


def _hlo_ops(compiled) -> list[str]:
    """The opcode of every HLO instruction, in order (names and metadata dropped)."""
    ops = []
    for line in compiled.as_text().splitlines():
        if " = " not in line or line.lstrip().startswith("//"):
            continue
        rhs = line.split(" = ", 1)[1].split("(", 1)[0].split()
        ops.append(rhs[-1] if rhs else "?")
    return ops


def bench_primitive(repeats):
    print("## define_primitive: jitted op vs its plain impl (min time over 5x20 runs, interleaved)")
    print(f"backend: {jax.default_backend()}, jax {jax.__version__}\n")

    def attention_impl(q, k, v, *, scale):
        s = jnp.einsum("...qd,...kd->...qk", q, k) * scale
        return jnp.einsum("...qk,...kd->...qd", jax.nn.softmax(s, axis=-1), v)

    def mlp_impl(x, w1, w2):
        return jnp.tanh(x @ w1) @ w2

    attention = define_primitive("bench_attention", attention_impl)
    mlp = define_primitive("bench_mlp", mlp_impl)
    key = jr.split(jr.key(0), 6)
    q = jr.normal(key[0], (8, 256, 64))
    k = jr.normal(key[1], (8, 256, 64))
    v = jr.normal(key[2], (8, 256, 64))
    x = jr.normal(key[3], (512, 256))
    w1 = jr.normal(key[4], (256, 512)) / 16
    w2 = jr.normal(key[5], (512, 256)) / 16
    cases = [
        ("attention (8x256x64)", lambda q, k, v: attention(q, k, v, scale=0.125),
         lambda q, k, v: attention_impl(q, k, v, scale=0.125), (q, k, v)),
        ("mlp (512x256 -> 512 -> 256)", mlp, mlp_impl, (x, w1, w2)),
        ("vmap(attention) over 8 heads", jax.vmap(lambda q, k, v: attention(q, k, v, scale=0.125)),
         jax.vmap(lambda q, k, v: attention_impl(q, k, v, scale=0.125)), (q, k, v)),
        ("grad(sum(mlp)) wrt w1", jax.grad(lambda w1, x, w2: jnp.sum(mlp(x, w1, w2))),
         jax.grad(lambda w1, x, w2: jnp.sum(mlp_impl(x, w1, w2))), (w1, x, w2)),
    ]
    print("| case | op time (ms) | impl time (ms) | op / impl | HLO instructions op / impl | same opcode sequence |")
    print("|---|---:|---:|---:|---:|---|")
    for name, op_fn, impl_fn, args in cases:
        c_op = jax.jit(op_fn).lower(*args).compile()
        c_impl = jax.jit(impl_fn).lower(*args).compile()
        # interleave the two measurements to be fair to both
        t_op, t_impl = [], []
        for _ in range(5):
            t_op.append(_time(c_op, *args, repeats=repeats, reduce=min))
            t_impl.append(_time(c_impl, *args, repeats=repeats, reduce=min))
        a, b = min(t_op), min(t_impl)
        ops_a, ops_b = _hlo_ops(c_op), _hlo_ops(c_impl)
        same = "yes" if ops_a == ops_b else "no"
        print(f"| {name} | {a * 1e3:.3f} | {b * 1e3:.3f} | {a / b:.3f} | {len(ops_a)} / {len(ops_b)} | {same} |")
    print()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=["scan", "grad", "primitive"], default=None)
    parser.add_argument("--rounds", type=int, default=7, help="interleaved timing rounds (scan table)")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    if args.only in (None, "scan"):
        bench_scan(CASES, args.rounds)
    if args.only in (None, "grad"):
        bench_grad(args.repeats)
    if args.only in (None, "primitive"):
        bench_primitive(max(args.repeats, 20))


if __name__ == "__main__":
    main()
