"""Reading sources: formats, column mapping, prompt rows (one reader per format, named by the file it reads)."""
