"""Layer 1: what every other layer shares: diagnostics, fixes, the rule base classes, decoding
source bytes. Imports nothing else of eqxlint."""
