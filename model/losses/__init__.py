"""Training objectives shared by several methods."""
