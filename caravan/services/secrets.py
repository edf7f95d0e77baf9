"""The secrets service: Kubernetes Secrets labelled `app.kubernetes.io/managed-by=caravan`.

A Secret of the same name that Caravan does not manage is never listed, read (not
found), overwritten or deleted (a conflict). Values are read from kube-apiserver on
demand (the store keeps names only) and never reach a log line or an error message:
messages name ids and keys, nothing more.
"""

from __future__ import annotations

import logging

from caravan.errors import ClusterRefusal, ConflictError, MalformedError, no_such, quote
from caravan.kube.client import JSON, SECRETS
from caravan.kube.errors import Conflict, KubeError, NotFound
from caravan.secrets import decode_secret_data, is_managed, managed_secret, validate_secret_id
from caravan.services.state import ServerState
from caravan.services.writes import Writes
from caravan.store.store import KIND_SECRET

log = logging.getLogger(__name__)


class Secrets:
    def __init__(self, state: ServerState) -> None:
        self.state = state

    def names(self) -> list[str]:
        """Ids of the secrets Caravan manages, sorted."""
        return sorted(self.state.store.secret_names)

    async def read(self, secret_id: str) -> tuple[dict[str, str], list[str]]:
        """The secret's flat string map, and the keys left out (not UTF-8 text)."""
        checked_id(secret_id)
        secret = await self._read(self._path(secret_id), secret_id)
        if secret is None or not is_managed(secret):
            # The same answer for "absent" and "not Caravan's": foreign Secrets stay unseen.
            raise no_such("secret", secret_id)
        return decode_secret_data(secret.get("data"))

    async def store(self, writes: Writes, secret_id: str, values: dict[str, str]) -> None:
        """Creates the secret, or replaces its whole map."""
        checked_id(secret_id)
        namespace = self.state.namespace
        path = self._path(secret_id)
        kube = self.state.kube

        async def attempt() -> JSON:
            existing = await self._read(path, secret_id)
            if existing is not None and not is_managed(existing):
                raise _not_ours(secret_id)
            try:
                if existing is None:
                    return await kube.create(
                        SECRETS.collection(namespace), managed_secret(secret_id, values)
                    )
                return await kube.replace(path, managed_secret(secret_id, values, existing))
            except Conflict:
                raise  # Created or changed meanwhile: read again and decide again.
            except KubeError as exc:
                raise _kube_failure(exc, secret_id) from None

        try:
            await writes.attempt(KIND_SECRET, path, attempt)
        except Conflict:
            raise _kept_changing(secret_id) from None
        log.info("stored secret %s (%d keys)", secret_id, len(values))

    async def delete(self, writes: Writes, secret_id: str) -> None:
        checked_id(secret_id)

        def check(existing: JSON) -> None:
            if not is_managed(existing):
                raise _not_ours(secret_id)

        # Delete exactly what was checked: if someone relabelled or replaced it meanwhile,
        # the precondition fails and it is looked at again.
        try:
            await writes.delete(KIND_SECRET, self._path(secret_id), check)
        except NotFound:
            raise no_such("secret", secret_id) from None
        except Conflict:
            raise _kept_changing(secret_id) from None
        except KubeError as exc:
            raise _kube_failure(exc, secret_id) from None
        log.info("deleted secret %s", secret_id)

    def _path(self, secret_id: str) -> str:
        return SECRETS.item(self.state.namespace, secret_id)

    async def _read(self, path: str, secret_id: str) -> JSON | None:
        try:
            return await self.state.kube.get(path)
        except NotFound:
            return None
        except KubeError as exc:
            raise _kube_failure(exc, secret_id) from None


def checked_id(secret_id: str) -> str:
    problem = validate_secret_id(secret_id)
    if problem is not None:
        raise MalformedError(f"invalid secret id {quote(secret_id)}: {problem}")
    return secret_id


def _not_ours(secret_id: str) -> ConflictError:
    return ConflictError(
        f"a Secret named {quote(secret_id)} exists but is not managed by Caravan"
        " (no label app.kubernetes.io/managed-by=caravan); Caravan leaves it alone"
    )


def _kept_changing(secret_id: str) -> ConflictError:
    return ConflictError(f"secret {quote(secret_id)} kept changing; try again")


def _kube_failure(exc: KubeError, secret_id: str) -> ClusterRefusal:
    """A Kubernetes refusal, told without its message (which could quote what we sent)."""
    fields = [str(c["field"]) for c in exc.causes if c.get("field")]
    log.warning("kubernetes refused an operation on secret %s: %s", secret_id, exc)
    where = f" (fields: {', '.join(fields)})" if fields else ""
    return ClusterRefusal(
        f"kubernetes refused the operation on secret {quote(secret_id)}: {exc.reason}{where}",
        exc,
    )
