"""Topic-model internals shared by the lda and lda_sweep stages."""
