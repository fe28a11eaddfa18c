"""Test servers and test PKI, for the test suite and the benchmarks (never production code)."""
