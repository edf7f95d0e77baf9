"""Genvid-style events: map/reduce of viewer events into per-period results.

Pure logic (no Kubernetes, no FastAPI). See docs/events.md.
"""

from caravan.events.document import validate_documents
from caravan.events.engine import Engine, IngestResult, Rejection
from caravan.events.errors import EventsError, EventsValidationError
from caravan.events.program import Program, compile_documents
from caravan.events.results import ResultMessage, ResultsLog, ResultsPage
from caravan.events.service import EventsService, EventsStats
from caravan.events.subscribers import Delivery, Subscription

__all__ = [
    "Delivery",
    "Engine",
    "EventsError",
    "EventsService",
    "EventsStats",
    "EventsValidationError",
    "IngestResult",
    "Program",
    "Rejection",
    "ResultMessage",
    "ResultsLog",
    "ResultsPage",
    "Subscription",
    "compile_documents",
    "validate_documents",
]
