"""lmpress bench: bits per byte of lmpress models beside classical codecs, every row
round-tripped. `run_bench(collect_inputs(paths), codecs)` is the API; `lmpress bench` the
command (docs/BENCH.md)."""

from .codecs import Codec, classical_codecs, lmpress_codecs
from .estimate import ContextRule, Estimate, estimate
from .inputs import BenchError, BenchInput, InputOptions, InputSet, collect_inputs
from .measure import Row, measure
from .run import BenchResult, Total, run_bench, summarize
from .scorers import load_scorer

__all__ = ["BenchError", "BenchInput", "BenchResult", "Codec", "ContextRule", "Estimate",
           "InputOptions", "InputSet", "Row", "Total", "classical_codecs", "collect_inputs",
           "estimate", "lmpress_codecs", "load_scorer", "measure", "run_bench", "summarize"]
