"""Events across replicas: partial reductions merged once, on NATS JetStream.

The pure parts (``codec``, ``merge``, ``shared_log``) import neither NATS nor Kubernetes;
``jetstream`` is the transport and needs the ``nats`` extra (``pip install caravan[nats]``).
See docs/events.md, "Several replicas".
"""
