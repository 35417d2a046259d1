"""The benchmarks behind scripts/bench.py (restore.bench.cli): CPU overhead, throughput and the
engine's cost (cpu), the GPU table (gpu), deepinv side by side (peers), large images (sizes) and
the operators (operators). Their numbers: docs/benchmarks.md."""
