"""One router module per area of API.md."""
