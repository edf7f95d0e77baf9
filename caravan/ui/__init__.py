"""The Cluster UI: static files served at /ui/ (see caravan.api.routers.ui)."""
