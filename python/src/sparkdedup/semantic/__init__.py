"""Semantic deduplication steps (SemDeDup): embed, kmeans, pairwise, identify, workflow."""
