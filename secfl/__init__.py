"""secfl."""
