"""Layer 4: whole-project facts: per-file collectors (cached with each file's result), the
project index merged from them (classes, primitives, the call graph and what is traced across
modules), and project paths (tests vs library). Imports `core`, `syntax`, `semantics`."""
