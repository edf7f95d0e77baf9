"""What `GET /v1/log/meta/{name}` says of an allocation: status word and creation time.

Both are the jobs views' own (caravan.jobs): the logs area reads the jobs area, never the
other way round.
"""

from __future__ import annotations

from caravan.jobs.summary import STATUS_OF_BUCKET, status_word
from caravan.jobs.times import rfc3339_utc

__all__ = ["STATUS_OF_BUCKET", "rfc3339_utc", "status_word"]
