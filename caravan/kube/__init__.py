"""Access to the Kubernetes API: a thin raw-JSON client and list+watch informers."""
