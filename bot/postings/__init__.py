"""The channel messages about postings and error groups: facts, reads, builders, the log."""
