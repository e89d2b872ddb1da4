"""Layer 6: suppressions: `# noqa` parsing and the baseline. Imports `core` and `syntax`."""
