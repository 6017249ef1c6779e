"""All SQL of ledgerops, one module per subject.

``postings`` (claim, settle, leases, recovery, due work), ``groups`` (error groups),
``outbox`` (Slack message rows), ``jobs`` (job runs, monthly quota), ``reads`` (what
the Slack side shows). ``upsert`` alone knows SQLite from PostgreSQL.
"""
