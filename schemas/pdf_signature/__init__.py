"""Generic PDF signature flow: a PDF signed through the parapheur, optionally archived."""
