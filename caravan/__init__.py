"""Caravan: the Genvid Cluster API on Kubernetes."""

__version__ = "0.1.0"
