"""zhtopics: a reproducible topic-modelling pipeline for Chinese text."""

__version__ = "0.1.0"
