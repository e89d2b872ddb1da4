"""Layer 5: the rules, one module per rule (`eqxNNN_<name>.py`), found by walking this package,
plus small family helpers (`_*.py`) that hold only rule-family logic. Rules ask the semantic
layer (`eqxlint.semantics`, `eqxlint.project`) for meaning; they never re-derive it."""
