"""All SQL of ledgerops, one module per subject.

``postings`` (claim, settle, leases, recovery, give-up, due work), ``groups`` (error
groups, mutes), ``jobs`` (job runs, monthly quota), ``outbox`` (Slack message rows),
``outages`` (the outage watch), ``reads`` (what a Slack message or log shows),
``figures`` (counts for metrics, digest, ledger panel), ``overview`` (the read models
of ``sync/overview.py`` and ``sync/log.py``). ``upsert`` alone knows SQLite from PostgreSQL.
"""
