"""Sensitive facts in the decision log: kept as ``hmac:<hex>`` (HMAC-SHA256), never in clear.

Equal values stay equal under one key, so a person can still search the log for "this account" by
masking the account the same way; without the key nobody can turn an entry back into a phone number.
The key comes from ``RULESVC_LOG_KEY``; without it a random key is made once and kept beside the log.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from engine.runtime.values import to_output

KEY_VARIABLE = "RULESVC_LOG_KEY"
MASK_PREFIX = "hmac:"


class Masker:
    """Replaces the sensitive values of facts (validated or in output form) by their HMAC."""

    def __init__(self, key: bytes):
        self._key = key

    @property
    def key(self) -> bytes:
        """The HMAC key (handed to the decision log's writer process through a pipe, never a command line)."""
        return self._key

    def mask_value(self, value: str) -> str:
        """``hmac:<hex>`` of ``value`` under the log's key."""
        return MASK_PREFIX + hmac.new(self._key, value.encode("utf-8"), hashlib.sha256).hexdigest()

    def mask(self, facts: dict[str, Any], paths: Iterable[str]) -> tuple[dict[str, Any], list[str]]:
        """``facts`` with every present value at ``paths`` masked (a copy where needed), and the
        paths that were masked (a replay must know which values it cannot read)."""
        masked: list[str] = []
        for path in paths:
            facts = self._mask_path(facts, path.replace("[]", ".[]").split("."), path, masked)
        return facts, masked

    def _mask_path(self, node: Any, parts: list[str], path: str, masked: list[str]) -> Any:
        head, rest = parts[0], parts[1:]
        if head == "[]":
            if not isinstance(node, list):
                return node
            return [self._mask_path(item, rest, path, masked) for item in node]
        if not isinstance(node, dict) or node.get(head) is None:
            return node
        copy = dict(node)
        if rest:
            copy[head] = self._mask_path(node[head], rest, path, masked)
            return copy
        # validated facts (money, instants) are masked as their output form reads: the same mask either way
        value = node[head] if type(node[head]) is str else to_output(node[head])
        if isinstance(value, str) and value != "":  # an empty string reveals nothing, and stays empty
            copy[head] = self.mask_value(value)
            if path not in masked:
                masked.append(path)
        return copy


def is_masked(value: Any) -> bool:
    """Whether a logged value is a mask (``hmac:…``)."""
    return isinstance(value, str) and value.startswith(MASK_PREFIX)


def log_key(key_file: Path) -> bytes:
    """``RULESVC_LOG_KEY``, or the key kept in ``key_file`` (made, readable by its owner only, on first use).

    Several workers may start at once: the key is written to a private temporary file and linked into
    place, which fails if another process got there first — then theirs is read. No one reads half a key.
    """
    configured = os.environ.get(KEY_VARIABLE)
    if configured:
        return configured.encode("utf-8")
    if not key_file.exists():
        key_file.parent.mkdir(parents=True, exist_ok=True)
        temporary = key_file.with_name(f".{key_file.name}.{os.getpid()}.{secrets.token_hex(4)}")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(secrets.token_hex(32).encode("ascii") + b"\n")
        try:
            os.link(temporary, key_file)
        except FileExistsError:
            pass
        finally:
            temporary.unlink()
    return key_file.read_bytes().strip()
