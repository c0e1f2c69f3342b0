"""Task recipes: each glues a dataset, a model, the training loop and its metrics into a run."""
