"""The Kopf operator: Job custom resources become Deployments, with status written back."""
