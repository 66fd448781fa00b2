"""Data, configuration, evaluation and tooling for the NTRENet framework."""
