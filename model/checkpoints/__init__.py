"""Reading `.pth` files without running code, and the converters from the releases' checkpoint formats."""
