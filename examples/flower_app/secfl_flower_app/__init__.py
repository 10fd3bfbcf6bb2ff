"""A Flower app whose model updates are securely aggregated by secfl."""
