"""Text handling shared by the stages."""
