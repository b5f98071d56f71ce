"""Publishing after a commit, from the API."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from app.jobs.service import Dispatcher, JobRef

log = logging.getLogger(__name__)


def publish_after_commit(dispatcher: Dispatcher, refs: Sequence[JobRef]) -> None:
    """Publish messages for committed jobs; a failure here loses nothing.

    The rows are committed as ``queued``: if the broker is unreachable now, the reconciler
    publishes them once it is back. The caller still gets its job ids.
    """
    try:
        dispatcher.publish(refs)
    except Exception as exc:
        log.warning(
            "publishing %d job(s) failed (%s); the reconciler will publish them",
            len(refs),
            type(exc).__name__,
        )
