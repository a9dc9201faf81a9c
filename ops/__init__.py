"""Running and proving tfq: the sandbox, examples, benchmarks and local helpers."""
