"""handoff's benchmarks: `make bench` (or `python -m benchmarks`) measures the sandbox twins'
bare capacity, intake, provisioning and a plain webhook script beside handoff, and writes
the figures to docs/BENCHMARKS.md."""
