"""The area services: what each area of the API does, with Kubernetes and the store.

Routers (caravan.api.routers) translate HTTP into calls of these services and their
domain errors (caravan.errors) into answers; pure logic stays in the area packages
(caravan.jobs, caravan.logs, ...). caravan.services.wiring builds and starts them all.
"""
