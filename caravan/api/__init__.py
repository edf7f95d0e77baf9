"""The HTTP side of Caravan: FastAPI app, one router per area of the API (docs/api.md)."""
