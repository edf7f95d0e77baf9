"""The in-memory view of the cluster that every read route is served from."""

from caravan.store.store import Store

__all__ = ["Store"]
