"""Built-in search-space files (NAME.yaml), installed with the package."""
