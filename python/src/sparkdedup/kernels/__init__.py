"""Pure array kernels (NumPy, numba, CUDA); nothing here imports Spark."""
