"""Reading the documents users hand to the client: JSON, or YAML for people."""

from __future__ import annotations

import json
from typing import IO, Any

import click
import yaml


def parse_document(text: str, where: str) -> Any:
    """JSON, else YAML; a usage error (exit 2) naming `where` when it is neither."""
    try:
        return json.loads(text)
    except ValueError:
        pass
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise click.BadParameter(f"{where} is neither JSON nor YAML: {exc}") from None


def read_document(file: IO[str]) -> Any:
    return parse_document(file.read(), getattr(file, "name", "the file"))
