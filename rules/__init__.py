"""Rule catalogue: one Markdown entry per rule (shipped as eqxlint.rules)."""
