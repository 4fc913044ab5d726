"""The test bench: a real local cluster, the demo, and the performance suite. Never in the wheel."""
