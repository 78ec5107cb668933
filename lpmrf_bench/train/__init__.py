"""Training the four networks (`lpmrf-bench train`): recipes, the loop, checkpoints, validation."""
