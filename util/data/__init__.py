"""Runtime data: benchmark registry (benchmarks/), class index, episodic dataset, transforms, loaders."""
