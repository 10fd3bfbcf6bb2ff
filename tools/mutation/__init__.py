"""Mutation testing of secfl's security checks, with the audit and the tests as oracles."""
