"""Helpers for the property-based tests: Hypothesis strategies that write recipes in every format (and
break them), and the checks a reader must pass on any input."""
