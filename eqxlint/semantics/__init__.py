"""Layer 3: the semantic model every rule queries: names (JAX/Equinox tables), the per-file
context (imports, scopes), what is traced and why, values (traced / static / key / instance),
types (Module vs data PyTree vs plain class, array vs static annotations). Imports `core` and
`syntax` only. A rule asks this layer; it never re-derives meaning."""
