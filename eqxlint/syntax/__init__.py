"""Layer 2: syntax: parsing with LibCST, the one walk, node helpers, positions, tokens.
Imports only `core`."""
