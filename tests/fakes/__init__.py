"""Fake servers of outside systems for tests, written from their public docs."""
