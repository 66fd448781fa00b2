"""Reading the project's input files: text (UTF-8, with clear errors) and images (size limits from the header)."""
