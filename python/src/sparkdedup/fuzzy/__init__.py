"""Fuzzy deduplication steps: MinHash, LSH, edges, components, identify, workflow."""
