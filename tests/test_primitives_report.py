"""`eqxlint primitives`: the coverage table built from the project index."""

from __future__ import annotations

import json
import textwrap
from types import SimpleNamespace

from eqxlint.app.primitives_report import cmd_primitives, render_text, report


def _project(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "ops").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "ops" / "__init__.py").write_text("")
    (pkg / "ops" / "core.py").write_text(textwrap.dedent('''
        from jax.extend.core import Primitive
        from jax.interpreters import ad, batching, mlir

        full_p = Primitive("full")
        full_p.def_abstract_eval(lambda x: x)
        mlir.register_lowering(full_p, lambda ctx, x: [x])
        ad.deflinear2(full_p, lambda ct, x: [ct])
        batching.defvectorized(full_p)

        bare_p = Primitive("bare")
        bare_p.def_abstract_eval(lambda x: x)

        argmax_p = Primitive("argmax")  # eqxlint: nondifferentiable
        argmax_p.def_abstract_eval(lambda x: x)
    '''))
    (pkg / "rules.py").write_text(textwrap.dedent('''
        from jax.interpreters import ad
        from pkg.ops.core import bare_p

        ad.primitive_jvps[bare_p] = lambda primals, tangents: (primals, tangents)
    '''))
    return pkg


def test_table_rows_and_totals(tmp_path):
    _project(tmp_path)
    data = report([tmp_path / "pkg"], cache=False, jobs=1)
    by_name = {r["name"]: r for r in data["primitives"]}
    assert set(by_name) == {"full", "bare", "argmax"}
    full = by_name["full"]["rules"]
    assert all(full[k]["registered"] for k in ("abstract_eval", "lowering", "jvp", "transpose", "batching"))
    bare = by_name["bare"]
    assert bare["path"] == "ops/core.py" and bare["line"] == 11
    assert bare["rules"]["jvp"]["registered"] is True  # registered in another file
    assert bare["rules"]["jvp"]["where"] == ["rules.py"]
    assert bare["rules"]["batching"]["registered"] is False
    assert by_name["argmax"]["nondifferentiable"] is True
    total = data["totals"]["TOTAL"]
    assert total["primitives"] == 3
    assert total["jvp"] == {"count": 2, "percent": 66.7, "unknown": 0}
    assert total["lowering"]["count"] == 1
    assert data["totals"]["ops"]["primitives"] == 3


def test_text_and_json_output(tmp_path, capsys):
    _project(tmp_path)
    args = SimpleNamespace(paths=[str(tmp_path / "pkg")], output_format="json", no_cache=True, jobs=1)
    assert cmd_primitives(args) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["totals"]["TOTAL"]["primitives"] == 3
    args.output_format = "text"
    assert cmd_primitives(args) == 0
    out = capsys.readouterr().out
    assert "ops/core.py:5" in out and "TOTAL" in out and "66.7%" in out


def test_empty_project(tmp_path):
    (tmp_path / "m.py").write_text("import jax\n")
    data = report([tmp_path], cache=False, jobs=1)
    assert data["primitives"] == []
    assert "No custom primitives" in render_text([], {}, str(tmp_path))
