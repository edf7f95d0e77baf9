"""The client's HTTP side: one httpx client, the API's error sentence on failure."""

from __future__ import annotations

import os
import pathlib
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click
import httpx
import yaml

DEFAULT_URL = "http://127.0.0.1:8080"
TIMEOUT_SECONDS = 30.0


class ApiFailure(click.ClickException):
    """An error answered by the API (or no answer at all): exit code 1, its sentence."""

    exit_code = 1

    def __init__(self, message: str, status: int = 0, details: list[Any] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.details = details or []

    def format_message(self) -> str:
        lines = [self.message]
        for detail in self.details:
            if isinstance(detail, dict) and str(detail.get("message", "")) in self.message:
                continue  # the sentence says it already: never print it twice
            if isinstance(detail, dict) and "message" in detail:
                where = detail.get("field") or detail.get("path") or ""
                lines.append(
                    f"  {where}: {detail['message']}" if where else f"  {detail['message']}"
                )
            else:
                lines.append(f"  {detail}")
        return "\n".join(lines)


# A path parameter refused by its pattern: said in words, never as the regular expression.
_PATTERN_REFUSAL = re.compile(r"String should match pattern '((?:[^']|\\')*)'")


def _rule(match: re.Match[str]) -> str:
    pattern = match.group(1)
    if pattern.startswith("^[a-z0-9]"):
        dots = ", '-' and '.'" if "\\." in pattern else " and '-'"
        return (
            f"must be a Kubernetes name: lowercase letters, digits{dots}, starting and "
            "ending with a letter or digit"
        )
    return "must not be empty, nor hold control characters"


def _in_words(text: str) -> str:
    return _PATTERN_REFUSAL.sub(_rule, text)


def failure_of(response: httpx.Response) -> ApiFailure:
    """The API's own sentence (`{"error", "details"}`), else the status line."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        details = body.get("details")
        return ApiFailure(
            _in_words(body["error"]),
            response.status_code,
            [
                {**d, "message": _in_words(str(d["message"]))}
                if isinstance(d, dict) and "message" in d
                else d
                for d in details
            ]
            if isinstance(details, list)
            else None,
        )
    text = response.text.strip()[:200]
    return ApiFailure(
        f"{response.status_code} {response.reason_phrase}: {text}", response.status_code
    )


_FORCE_PARAMETER = re.compile(r"\b(?:send |with |pass )?force=true\b")


@contextmanager
def flags_named() -> Iterator[None]:
    """The API's refusals name its query parameters (`force=true`); a CLI user has flags,
    so a refusal that names one is said with the flag (`--force`)."""
    try:
        yield
    except ApiFailure as exc:
        said = _FORCE_PARAMETER.sub("use --force", exc.message)
        if said == exc.message:
            raise
        raise ApiFailure(said, exc.status, exc.details) from None


def kubeconfig_token(path: str | None = None, context: str | None = None) -> str:
    """The bearer token of the kubeconfig's (current) context user: `token` or `tokenFile`."""
    chosen = path or os.environ.get("KUBECONFIG", "").split(os.pathsep)[0]
    file = pathlib.Path(chosen) if chosen else pathlib.Path.home() / ".kube" / "config"
    try:
        config = yaml.safe_load(file.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise click.ClickException(f"cannot read kubeconfig {file}: {exc}") from None
    name = context or config.get("current-context")
    ctx = next((c for c in config.get("contexts") or [] if c.get("name") == name), None)
    if ctx is None:
        raise click.ClickException(f"kubeconfig {file} has no context {name!r}")
    user_name = (ctx.get("context") or {}).get("user")
    user = next((u for u in config.get("users") or [] if u.get("name") == user_name), None)
    fields = (user or {}).get("user") or {}
    if fields.get("token"):
        return str(fields["token"])
    if fields.get("tokenFile"):
        return pathlib.Path(fields["tokenFile"]).read_text().strip()
    raise click.ClickException(
        f"kubeconfig user {user_name!r} has no token (client certificates cannot be sent to"
        " Caravan); use --token or CARAVAN_TOKEN"
    )


class Api:
    """Calls the Cluster API; raises ApiFailure on anything but 2xx."""

    def __init__(
        self, url: str, token: str | None = None, timeout: float = TIMEOUT_SECONDS
    ) -> None:
        self.url = url.rstrip("/")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout)

    def close(self) -> None:
        self.http.close()

    def send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise ApiFailure(f"cannot reach Caravan at {self.url}: {exc}") from None
        if response.status_code >= 400:
            raise failure_of(response)
        return response

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.send("GET", path, **kwargs).json()

    def post(self, path: str, body: Any = None, **kwargs: Any) -> Any:
        response = self.send("POST", path, json=body, **kwargs)
        return response.json() if response.content else None

    def delete(self, path: str, **kwargs: Any) -> None:
        self.send("DELETE", path, **kwargs)

    @contextmanager
    def stream(self, path: str, **kwargs: Any) -> Iterator[httpx.Response]:
        """A streamed GET (log follow): the body is read by the caller as it comes."""
        try:
            with self.http.stream("GET", path, timeout=None, **kwargs) as response:
                if response.status_code >= 400:
                    response.read()
                    raise failure_of(response)
                yield response
        except httpx.TransportError as exc:
            raise ApiFailure(f"cannot reach Caravan at {self.url}: {exc}") from None


def write_if_unchanged(api: Api, path: str, seen: Any, body: Any, what: str) -> Any:
    """POSTs `body` to `path` unless `path` now answers something other than `seen`.

    The settings and the log definitions are whole documents written without a version
    precondition. Re-reading right before the write narrows the window in which another
    writer's change would be overwritten to one request, and a caught change is refused
    with a sentence instead of being lost."""
    if api.get(path) != seen:
        raise ApiFailure(
            f"{what} changed since this command read them (another writer); nothing was "
            "written: run the command again",
            409,
        )
    return api.post(path, body)
