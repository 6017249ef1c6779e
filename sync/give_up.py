"""Give up by age: a posting still retrying long after it was queued needs a person.

Each goes into an error group (code ``gave_up``, fingerprint like the worker's), so
Slack shows one message for many postings that gave up the same way. The
scheduler runs :func:`give_up_old` periodically; replicas may run it at once,
because each posting moves with a guarded update.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from storage.db import Connection
from storage.queries.groups import upsert_error_group
from storage.queries.postings import give_up_posting, postings_retrying_since
from storage.states import PostingState
from sync.changes import Change
from sync.engine import Engine
from sync.policy import fingerprint

#: error code (and group) of postings the age limit gave up on
GAVE_UP = "gave_up"
#: postings given up per transaction
GIVE_UP_CHUNK = 500


async def give_up_old(engine: Engine, hours: float) -> list[Change]:
    """Every posting retrying for longer than ``hours`` -> ``failed``, a chunk per transaction."""
    now = engine.clock()
    cutoff = now - timedelta(hours=hours)
    given: list[Change] = []
    while True:
        changes = await engine.db.run(lambda conn: give_up_retrying(conn, cutoff, now, hours, GIVE_UP_CHUNK))
        given.extend(changes)
        engine.feed.publish(changes)
        if len(changes) < GIVE_UP_CHUNK:
            return given


def give_up_retrying(
    conn: Connection, cutoff: datetime, now: datetime, hours: float, limit: int
) -> list[Change]:
    """Move up to ``limit`` postings retrying since before ``cutoff`` to ``failed``, grouped."""
    rows = postings_retrying_since(conn, cutoff, limit)
    changes: list[Change] = []
    for r in rows:
        cause = r.last_error or "The ledger did not answer."
        gid = upsert_error_group(
            conn,
            fingerprint=fingerprint(
                r.name, GAVE_UP, cause, (r.external_id, r.idempotency_key, r.external_ref or "")
            ),
            integration_id=r.integration_id,
            code=GAVE_UP,
            title=f"Still failing after {hours:g} hours: {cause}",
            now=now,
        )
        error = f"{cause} (gave up: still failing after {hours:g} hours)"
        if give_up_posting(conn, r.id, group_id=gid, code=GAVE_UP, error=error, now=now):
            changes.append(Change(r.id, r.document_id, PostingState.FAILED, gid))
    return changes
