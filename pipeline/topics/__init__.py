"""Topic-model internals shared by the lda_sweep and lda stages and by inference: counts,
engines (gensim, tomotopy), coherence, term rankings, representative documents, prevalence,
the saved model and the LDAvis page. Nothing here imports a stage module."""
