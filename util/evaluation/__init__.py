"""Scoring: IoU counts and metrics, the episodic evaluator, visual panels."""
