"""Text internals shared by the stages: reading raw files, dates, normalising, segmenting."""
