"""A generator of JAX-shaped Python programs for fuzzing the rules (issue 16): functions under
`jax.jit`/`eqx.filter_jit`/`partial(jax.jit, static_argnums=...)`/`vmap`/`grad`/custom JVP,
`eqx.Module` subclasses, prints (f-strings, `sep=`, `*args`), Python `if`/`for`/`while` on
parameters, PRNG keys split and reused, `lax.scan`/`cond`/`fori_loop`/`while_loop`/`switch` bodies,
nested functions, `global` statements, callbacks, primitives — built from a small grammar with
hypothesis strategies, so every program parses and most of it is what the rules look at."""

from __future__ import annotations

from hypothesis import strategies as st

HEADER = (
    "import functools\n"
    "from functools import partial\n\n"
    "import equinox as eqx\n"
    "import jax\n"
    "import jax.numpy as jnp\n"
    "import jax.random as jr\n"
    "from jax import lax\n"
)

DECORATORS = [
    "@jax.jit", "@eqx.filter_jit", "@partial(jax.jit, static_argnums=(1,))",
    "@partial(jax.jit, static_argnames=('n', 'flag'))", "@functools.partial(jax.jit, donate_argnums=0)",
    "@jax.vmap", "@eqx.filter_vmap", "@jax.grad", "@eqx.filter_grad", "@jax.value_and_grad",
    "@jax.checkpoint", "@jax.custom_jvp", "@jax.custom_vjp", "@eqx.filter_checkpoint",
    "@partial(jax.vmap, in_axes=(0, None))", "@jax.pmap",
]
JITS = ["@jax.jit", "@eqx.filter_jit", "@partial(jax.jit, static_argnums=(1,))",
        "@partial(jax.jit, static_argnames=('n', 'flag'))", "@eqx.filter_vmap", "@jax.grad"]
GLOBALS = ["COUNTER", "CACHE", "DEBUG"]
TARGETS = ["y", "z", "out", "x", "state", "noise", "carry"]

# One-line statements. {a}, {b}: expressions in scope; {v}: a plain name to assign; {k}: a key;
# {f}: a function (a name defined in the module, or a lambda).
SIMPLE = [
    "print({a})", "print(*{a})", "print(*args)", "print('value', {a}, sep=', ')", "print(f'{{{v}}} done')",
    "print(f'{v}={{{v}:.3f}}')", "print('{{}} braces', {a}, {b})", "print({a}, file=None)",
    "{v} = {a} + 1", "{v} = jnp.sin({a}) * {b}", "{v} = ({a})[0]", "{v}, {k} = {a}, {b}",
    "{k}, sub = jr.split({k})", "noise = jr.normal({k}, (3,))", "keys = jr.split({k}, 4)",
    "{v} = jr.uniform({k}, jnp.shape({a}))", "{v} = jr.split({k}, len(jax.tree_util.tree_leaves({a})))",
    "{v} = lax.cond({a} > 0, lambda t: t + 1, lambda t: t - 1, {b})",
    "{v} = lax.switch({a}, [lambda t: t, lambda t: -t], {b})",
    "{v}, _ = lax.scan(lambda c, t: (c + t, c * t), {a}, {b})",
    "{v} = lax.fori_loop(0, {a}, lambda i, t: t * 2, {b})",
    "{v} = lax.while_loop(lambda t: t < 10, lambda t: t + 1, {a})",
    "{v} = jax.eval_shape({f}, {a})", "{v} = jax.jvp({f}, ({a},), ({b},))", "{v} = jax.vjp({f}, {a})",
    "{v} = eqx.filter_jit({f})({a})", "{v} = jax.jit({f})({a})", "{v} = jax.vmap({f})({a})",
    "{v} = jax.pure_callback({f}, {a}, {b})", "jax.debug.print('{{}}', {a})", "jax.debug.callback({f}, {a})",
    "assert {a} is not None", "assert ({a}).shape[0] == {b}", "{v} = {a} if {b} else -{a}",
    "{v} = float({a})", "{v} = int(({a}).sum())", "{v} = ({a}).item()", "{v} = bool({a})",
    "{v} = model({a})", "{v} = jnp.zeros(({a}, 3))", "{v} = jnp.ones_like({a})",
    "{v} = lax.stop_gradient({a})", "{v} = jax.lax.psum({a}, 'i')", "{v} = eqx.error_if({a}, {b}, 'bad')",
    "{v} = [{a} for _ in range(3)]", "{v} = {{'w': {a}, 'b': {b}}}", "del {v}", "pass",
    "{v} = jax.extend.core.Primitive('p_{v}')", "{v} = ({a}).bind({b})", "{v} = {f}({a}, *args)",
]
EXPRS = [
    "{n}", "{n}", "{n} + 1", "jnp.sin({n})", "{n} * 2", "{n}[0]", "({n}, {m})", "jnp.zeros(3)",
    "{n}.shape[0]", "-{n}", "{n} @ {m}", "jnp.asarray({n})", "{n}.T", "None", "1.0", "(3)",
]


@st.composite
def expression(draw, names):
    n, m = draw(st.sampled_from(names)), draw(st.sampled_from(names))
    return draw(st.sampled_from(EXPRS)).format(n=n, m=m)


@st.composite
def simple_statement(draw, names, functions):
    template = draw(st.sampled_from(SIMPLE))
    fill = {
        "a": draw(expression(names)), "b": draw(expression(names)), "v": draw(st.sampled_from(TARGETS)),
        "k": draw(st.sampled_from(["key", "key", "subkey", "rng"])),
        "f": draw(st.sampled_from(functions + ["lambda t: t * 2", "jnp.sin"])),
    }
    return [template.format(**fill)]


def _indent(lines):
    return ["    " + line if line else line for line in lines]


@st.composite
def block(draw, names, functions, depth):
    out = []
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["simple"] * 5 + ["if", "for", "while", "try", "def", "with"])) if depth < 2 else "simple"
        if kind == "simple":
            out += draw(simple_statement(names, functions))
        elif kind == "if":
            cond = draw(st.sampled_from(["{n}", "{n} > 0", "not {n}", "{n} is None", "{n}.shape[0] > 2",
                                         "debug", "isinstance({n}, jax.core.Tracer)", "{n} == 'sum'"]))
            out.append("if " + cond.format(n=draw(st.sampled_from(names))) + ":")
            out += _indent(draw(block(names, functions, depth + 1)))
            if draw(st.booleans()):
                out.append("else:")
                out += _indent(draw(block(names, functions, depth + 1)))
        elif kind == "for":
            it = draw(st.sampled_from(["range({n})", "{n}", "jr.split(key, 3)", "range(3)"]))
            out.append("for i in " + it.format(n=draw(st.sampled_from(names))) + ":")
            out += _indent(draw(block(names + ["i"], functions, depth + 1)))
        elif kind == "while":
            out.append("while " + draw(st.sampled_from(["{n} > 0", "{n}"])).format(n=draw(st.sampled_from(names))) + ":")
            out += _indent(draw(block(names, functions, depth + 1)))
            out.append("    break")
        elif kind == "try":
            out.append("try:")
            out += _indent(draw(block(names, functions, depth + 1)))
            out.append("except Exception as e:")
            out += _indent(["print('failed', e)"] + draw(block(names, functions, depth + 1)))
        elif kind == "with":
            out.append("with jax.ensure_compile_time_eval():")
            out += _indent(draw(block(names, functions, depth + 1)))
        else:
            name = "body_" + str(len(out))
            out += draw(function(name, names, functions, depth + 1, nested=True))
            out += draw(simple_statement(names, functions + [name]))
    return out


PARAMS = ["x", "key", "n", "model", "flag", "xs", "state", "mode", "params"]


@st.composite
def signature(draw):
    chosen = draw(st.lists(st.sampled_from(PARAMS), min_size=1, max_size=4, unique=True))
    parts = list(chosen)
    if draw(st.booleans()):
        parts.append(draw(st.sampled_from(["n=3", "flag=False", "debug=False", "mode='sum'"])))
    if draw(st.integers(0, 3)) == 0:
        parts.append("*args")
    if draw(st.integers(0, 4)) == 0:
        parts.append("**kwargs")
    names = chosen + [p.split("=")[0] for p in parts if "=" in p] + (["args"] if "*args" in parts else [])
    return ", ".join(dict.fromkeys(parts)), names


@st.composite
def function(draw, name, outer, functions, depth, nested=False, method=False):
    lines = draw(st.lists(st.sampled_from(DECORATORS), max_size=1))
    if draw(st.integers(0, 2)):  # most functions are traced: a jit-like decorator first
        lines.insert(0, draw(st.sampled_from(JITS)))
    params, names = draw(signature())
    if method:
        params, names = "self, " + params, names + ["self.w", "self.n", "self.flag"]
    lines.append(f"def {name}({params}):")
    body = []
    if not method and draw(st.integers(0, 3)) == 0:
        g = draw(st.sampled_from(GLOBALS))
        body += [f"global {g}", f"{g} = {g} + 1" if draw(st.booleans()) else f"{g} = {names[0]}"]
    body += draw(block(list(dict.fromkeys(names + (outer if nested else []))), functions, depth))
    if draw(st.booleans()):
        body.append("return " + draw(expression(names)))
    lines += _indent(body)
    if "@jax.custom_jvp" in lines and not nested:
        lines += ["", f"@{name}.defjvp", f"def {name}_jvp(primals, tangents):",
                  "    (x,), (t,) = primals, tangents", f"    return {name}(x), t"]
    return lines


@st.composite
def module_class(draw, name, functions):
    lines = [f"class {name}(eqx.Module):",
             "    w: jax.Array", "    n: int = 3",
             "    flag: bool = " + draw(st.sampled_from(["False", "eqx.field(static=True, default=False)"])),
             "    mode: str = 'sum'", ""]
    for meth in draw(st.lists(st.sampled_from(["__call__", "step", "loss"]), min_size=1, max_size=2, unique=True)):
        lines += _indent(draw(function(meth, [], functions, 1, method=True))) + [""]
    return lines


TOP = [
    "{g} = jax.jit({f})", "{g} = jax.grad({f})", "{g} = jax.vmap({f})", "{g} = eqx.filter_jit({f})",
    "out = {f}(x0)", "print(*{f}(x0))", "key = jr.PRNGKey(0)", "x0 = jnp.ones(3)",
    "carry, ys = lax.scan({f}, x0, xs)", "global COUNTER", "COUNTER = 0", "DEBUG = False",
    "{g} = jax.value_and_grad({f})(x0)", "for step in range(3):\n    key, sub = jr.split(key)\n    print(*{f}(x0))",
]


@st.composite
def programs(draw) -> str:
    lines = HEADER.splitlines() + ["", "COUNTER = 0", ""]
    functions: list = []
    for i in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["def", "def", "def", "class", "top"]))
        if kind == "def":
            name = f"f{i}"
            lines += [""] + draw(function(name, [], functions, 0)) + [""]
            functions.append(name)
        elif kind == "class":
            lines += [""] + draw(module_class(f"Model{i}", functions)) + [""]
        else:
            f = draw(st.sampled_from(functions or ["jnp.sin"]))
            lines += draw(st.sampled_from(TOP)).format(f=f, g=f"g{i}").splitlines()
    return "\n".join(lines) + "\n"
