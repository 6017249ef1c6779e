"""The engine: documents in, postings out. Knows nothing of Slack or HTTP servers."""
