"""Text processing used by the ingest, clean and segment stages: decoding and file formats,
dates, normalisation, boilerplate rules, deduplication, tokenizers, the token cache and the
worker pool. Nothing here reads or writes pipeline tables; the stage modules do."""
