"""Events across replicas: partial reductions merged once, on NATS JetStream.

The pure parts (``codec``, ``merge``, ``shared_log``) import neither NATS nor Kubernetes;
the others are the transport and need the ``nats`` extra (``pip install caravan[nats]``):
``connection`` (the connection and the streams), ``outbox`` (this replica's partials),
``merger`` (the leader's), ``documents`` and ``results`` (the two streams every replica
follows), put together by ``cluster``. See docs/events.md, "Several replicas".
"""
