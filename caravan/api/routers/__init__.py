"""One router module per area of the API (docs/api.md)."""
