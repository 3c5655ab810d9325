"""Training: the accelerate loop shared by every stage."""
