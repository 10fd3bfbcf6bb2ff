"""secfl benchmarks: crypto overhead per protocol against the plaintext baseline."""
