"""Layer 8: the applications: Python API, CLI, language server, reporters, configuration, file
discovery, cache, scheduling, sharding, notebooks, fix writing, `--add-noqa`, the primitives
report and the generated docs. The top layer: nothing below imports it."""
