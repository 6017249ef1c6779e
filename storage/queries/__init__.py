"""All SQL of ledgerops, one module per subject.

``postings`` (claim, settle, leases, recovery, give-up, due work), ``groups`` (error
groups, mutes), ``jobs`` (job runs, monthly quota), ``outbox`` (Slack message rows),
``outages`` (the outage watch), ``reads`` (what a Slack message or log shows),
``figures`` (counts for metrics, digest, ledger panel), ``overview`` (the read models
of ``sync/overview.py`` and ``sync/log.py``), ``documents`` (ingest's locked reads,
a resync's and a bulk resync's selection), ``requeue`` (every guarded queue-again:
resync, ignore, history transfer, mapping set, bulk), ``integrations`` (rows, pause,
auto-transfer release), ``mappings`` (stored mappings, what lacked one). ``upsert``
alone knows SQLite from PostgreSQL. sync/ calls these and imports no SQLAlchemy.
"""
