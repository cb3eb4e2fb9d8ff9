"""A little help for generating Python source at load time.

The fast path turns a decision's *validated* declarations into straight-line Python functions
(reading facts, encoding the matched fact), compiled once per load. Nothing from a request is ever
compiled or evaluated: requests only flow through the functions as data.
"""

from __future__ import annotations

from typing import Any


class Source:
    """Lines of a module being generated, with the constants they refer to."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.constants: dict[str, Any] = {}
        self.code: Any = None  # the expression generator of the function being written, if any
        self._counter = 0

    def name(self, prefix: str) -> str:
        """A fresh identifier."""
        self._counter += 1
        return f"{prefix}{self._counter}"

    def constant(self, value: Any, prefix: str = "K") -> str:
        """An identifier bound to ``value`` in the generated module."""
        name = self.name(prefix)
        self.constants[name] = value
        return name

    def add(self, indent: int, line: str) -> None:
        self.lines.append("    " * indent + line)

    def compile(self, filename: str, names: dict[str, Any]) -> dict[str, Any]:
        """Execute the generated definitions; returns the module namespace."""
        namespace = {**names, **self.constants}
        code = compile("\n".join(self.lines) + "\n", filename, "exec")
        exec(code, namespace)  # noqa: S102 - generated from validated declarations, never from a request
        return namespace

    @property
    def text(self) -> str:
        return "\n".join(self.lines)
