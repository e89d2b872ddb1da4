"""Layer 7: the engine: lint one file (parse once, walk once, build the semantic context,
replay to every rule, materialise findings), finalize a project (cross-file rules, conditions,
suppressions), the rule registry and the catalogue. Imports every layer below it."""

from .run import FileResult as FileResult
from .run import RunConfig as RunConfig
from .run import finalize as finalize
from .run import lint_bytes as lint_bytes
from .run import lint_source as lint_source
