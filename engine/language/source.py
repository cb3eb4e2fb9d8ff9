"""YAML documents that remember where every key and value came from.

PyYAML's composer gives each node a start mark; we build plain Python values (``yaml.safe_load``
semantics) and keep a side table from the value's path (``("decisions", "initiate", "rules", 3,
"when")``) to its position, so every later check can report ``FILE:LINE:COL``.
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass, field
from typing import Any, BinaryIO

import yaml

from engine.errors import Problem
from engine.language.hints import huge_number_message, yaml_syntax_message
from engine.language.model import Locator
from engine.runtime.values import MAX_INT

Path = tuple[Any, ...]
PathLike = str | os.PathLike[str]

_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"
# libyaml's parser when PyYAML was built with it (same safe semantics, ~10x faster), else pure Python.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass
class _Scalar:
    line: int  # 0-based, as PyYAML marks are
    column: int
    style: str | None
    source_lines: list[tuple[int, int, int]] = field(default_factory=list)
    # (offset in value, line, column) for each source line a multi-line string spans


@dataclass
class SourceDocument:
    """A parsed YAML file: ``data`` holds plain values, positions are looked up by path."""

    file: str
    text: str
    data: Any
    _values: dict[Path, _Scalar] = field(default_factory=dict)
    _keys: dict[Path, tuple[int, int]] = field(default_factory=dict)

    def position(self, path: Path, *, key: bool = False) -> tuple[int, int]:
        """1-based (line, column) of the value at ``path`` (or of its key), or of its nearest parent."""
        probe = tuple(path)
        while True:
            if key and probe in self._keys:
                line, column = self._keys[probe]
                return line + 1, column + 1
            if probe in self._values:
                scalar = self._values[probe]
                return scalar.line + 1, scalar.column + 1
            if not probe:
                return 1, 1
            probe = probe[:-1]
            key = True

    def problem(self, path: Path, message: str, *, key: bool = False) -> Problem:
        line, column = self.position(path, key=key)
        return Problem(self.file, line, column, message)

    def locator(self, path: Path) -> Locator:
        """Where the string value at ``path`` lies, for positions found after loading (rulesvc verify)."""
        scalar = self._values.get(tuple(path))
        if scalar is None or not scalar.source_lines:
            line, column = self.position(path)
            return Locator(self.file, ((0, line - 1, column - 1),))
        return Locator(self.file, tuple((start, line, column) for start, line, column in scalar.source_lines))

    def expression_problem(self, path: Path, offset: int, message: str) -> Problem:
        """A problem at character ``offset`` inside the string value at ``path``."""
        scalar = self._values.get(tuple(path))
        if scalar is None or not scalar.source_lines:
            return self.problem(path, message)
        file, line, column = self.locator(path).at(offset)
        return Problem(file, line, column, message)


# Limits of one YAML document (docs/rule-format.md §8). The shipped rule files hold about 500 values
# and 10 levels; the limits keep checking any file quick (about 1 s for the largest file allowed) and
# every recursive step after parsing — building, the JSON Schema check, the loader — far from
# Python's recursion limit.
MAX_DEPTH = 32  # mappings and lists inside each other
MAX_NODES = 10_000  # values, counting every use of an alias


class _TooLarge(Exception):
    def __init__(self, mark: yaml.Mark, message: str):
        self.mark = mark
        self.message = message


# The largest rule, scenario, calendar or facts file read (SPEC §7.1: the service's body maximum); a
# reader takes one byte more to know, never the whole stream (/dev/zero would fill the memory).
MAX_FILE_BYTES = 1024 * 1024


class FileTooLarge(Exception):
    """More than the limit was there to read."""


def read_capped(stream: BinaryIO, limit: int = MAX_FILE_BYTES) -> bytes:
    """At most ``limit`` bytes of ``stream``; :class:`FileTooLarge` when there are more."""
    raw = stream.read(limit + 1)
    if len(raw) > limit:
        raise FileTooLarge(f"the file is larger than {limit:,} bytes, the most that is read")
    return raw


def read_source(path: PathLike, limit: int = MAX_FILE_BYTES, *, regular_only: bool = True) -> tuple[str | None, Problem | None]:
    """The text of a UTF-8 file, or a problem a person can act on (a GBK file: save it as UTF-8).

    The one reader of the files named on a command line or found in a rules directory: at most
    ``limit`` bytes; with ``regular_only`` a FIFO or a device (which could block or never end) is refused
    before anything is read — opened without blocking, so a FIFO with no writer answers too."""
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        with open(descriptor, "rb") as stream:
            # (a directory: open() has said "Is a directory" already)
            if regular_only and not stat.S_ISREG(os.fstat(descriptor).st_mode):
                return None, Problem(str(path), 1, 1, "cannot read the file: it is not a regular file "
                                                      "(a FIFO or a device)")
            os.set_blocking(descriptor, True)
            raw = read_capped(stream, limit)
    except OSError as error:
        return None, Problem(str(path), 1, 1, f"cannot read the file: {error.strerror or error}")
    except FileTooLarge as error:
        return None, Problem(str(path), 1, 1, str(error))
    return decode_source(str(path), raw)


def decode_source(file: str, raw: bytes) -> tuple[str | None, Problem | None]:
    """:func:`read_source` for bytes already in hand (an uploaded file)."""
    try:
        return raw.decode("utf-8"), None
    except UnicodeDecodeError as error:
        return None, _not_utf8(file, raw, error)


def _not_utf8(file: str, raw: bytes, error: UnicodeDecodeError) -> Problem:
    before = raw[: error.start]
    line = before.count(b"\n") + 1
    column = len(before[before.rfind(b"\n") + 1:].decode("utf-8", errors="replace")) + 1
    try:
        raw.decode("gb18030")
        guess = "it looks like GBK/GB18030 (a Chinese Windows encoding)"
    except UnicodeDecodeError:
        guess = "it is in some other encoding"
    return Problem(file, line, column, f"the file is not UTF-8 text (byte 0x{raw[error.start]:02X} here); {guess}: "
                                       "save it as UTF-8 in your editor (e.g. 另存为 → 编码 UTF-8)")


def load_document(file: str, text: str, *, quoted_decimals: bool = False) -> tuple[SourceDocument | None, list[Problem]]:
    """Parse ``text`` safely; on a syntax error or a document past the limits return no document and
    the problem's position.

    Besides syntax, a scalar YAML reads as something else than it looks is a problem: ``yes``/``no``/
    ``on``/``off`` (YAML 1.1 booleans) and whole numbers too large to compare exactly; with
    ``quoted_decimals`` (rule files, where money is text) so is an unquoted ``99.90``.
    """
    try:
        # Measured on the event stream first: libyaml's composer recurses in C (a deep document
        # would overflow the stack) and its scanner slows down with the square of the nesting.
        _check_shape(text)
        node = yaml.compose(text, Loader=_LOADER)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        if mark is None:
            return None, [Problem(file, 1, 1, f"YAML syntax error: {error.problem or error.context}")]
        if "nesting depth" in (error.problem or ""):
            # libyaml's own limit (1,000 levels in the 0.2.6 that PyYAML 6.0.4 bundles) can speak before our
            # count does: on one line of flow brackets its scanner reads up to 1,024 characters ahead of the
            # events. That deep is deeper than ours: the answer is ours, where libyaml stopped.
            return None, [Problem(file, mark.line + 1, mark.column + 1, _too_deep(mark).message)]
        message = yaml_syntax_message(error.problem, error.context, mark.line, mark.column, text.splitlines())
        return None, [Problem(file, mark.line + 1, mark.column + 1, message)]
    except yaml.YAMLError as error:  # e.g. a control character the reader refuses
        return None, [Problem(file, 1, 1, "YAML syntax error: " + " ".join(str(error).split()))]
    except _TooLarge as error:
        return None, [Problem(file, error.mark.line + 1, error.mark.column + 1, error.message)]
    document = SourceDocument(file=file, text=text, data=None)
    problems: list[Problem] = []
    if node is not None:
        builder = _Builder(document, problems, quoted_decimals)
        try:
            document.data = builder.build(node, ())
        except _TooLarge as error:
            return None, [Problem(file, error.mark.line + 1, error.mark.column + 1, error.message)]
    return document, problems


def _too_deep(mark: yaml.Mark, aliases: str = "") -> _TooLarge:
    return _TooLarge(mark, f"mappings and lists are nested more than {MAX_DEPTH} levels deep{aliases}")


def _too_many(mark: yaml.Mark, aliases: str = "") -> _TooLarge:
    return _TooLarge(mark, f"the document holds more than {MAX_NODES:,} values{aliases}; split it into several files")


def _check_shape(text: str) -> None:
    """Raise :class:`_TooLarge` at the first event past :data:`MAX_DEPTH` or :data:`MAX_NODES`."""
    depth = nodes = 0
    for event in yaml.parse(text, Loader=_LOADER):
        if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            depth += 1
            if depth > MAX_DEPTH:
                raise _too_deep(event.start_mark)
        elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            depth -= 1
            continue
        elif not isinstance(event, (yaml.ScalarEvent, yaml.AliasEvent)):
            continue
        nodes += 1
        if nodes > MAX_NODES:
            raise _too_many(event.start_mark)


class Reported(str):
    """The text of a scalar already reported as a problem, kept as written; later checks skip it."""


class UnquotedDecimal(Reported):
    """An unquoted decimal (``99.90``) in a rule file: reported, and typed as the money it means."""


_YAML11_BOOLEAN = re.compile(r"yes|no|on|off|y|n", re.IGNORECASE)


class _Builder:
    def __init__(self, document: SourceDocument, problems: list[Problem], quoted_decimals: bool = False):
        self.document = document
        self.problems = problems
        self.quoted_decimals = quoted_decimals
        self.lines = document.text.splitlines()
        self.constructor = yaml.SafeLoader("")
        self.open_nodes: set[int] = set()
        self.built = 0
        self.depth = 0
        self.string_scalars: dict[int, _Scalar] = {}  # per node: an alias of a long text is measured once

    def build(self, node: yaml.Node, path: Path) -> Any:
        # Aliases can make a small text expand into a large or deep document: count what is built.
        self.built += 1
        if self.built > MAX_NODES:
            raise _too_many(node.start_mark, " once its aliases are expanded")
        self.document._values[path] = _Scalar(node.start_mark.line, node.start_mark.column, None)
        if isinstance(node, yaml.CollectionNode):
            if id(node) in self.open_nodes:  # an alias to one of its own parents
                self.problems.append(self._at(node, "a YAML alias may not refer to a mapping or list that contains it"))
                return None
            self.open_nodes.add(id(node))
            self.depth += 1
            if self.depth > MAX_DEPTH:
                raise _too_deep(node.start_mark, " once its aliases are expanded")
            try:
                return self._collection(node, path)
            finally:
                self.open_nodes.discard(id(node))
                self.depth -= 1
        value = self._checked(node, self.scalar(node), in_list=bool(path) and isinstance(path[-1], int))
        if isinstance(value, str):
            if id(node) not in self.string_scalars:
                self.string_scalars[id(node)] = self._string_scalar(node)
            self.document._values[path] = self.string_scalars[id(node)]
        return value

    def _checked(self, node: yaml.Node, value: Any, *, in_list: bool) -> Any:
        """Report a scalar that YAML reads otherwise than it looks; what to keep in its place."""
        if node.style:  # quoted or a block scalar: the text as written (libyaml marks plain as "", PyYAML None)
            return value
        if isinstance(value, bool) and _YAML11_BOOLEAN.fullmatch(node.value):
            self.problems.append(self._at(node, f"YAML reads {node.value} as the boolean {str(value).lower()}: write "
                                                f"'{node.value}' in quotes for the text, or {str(value).lower()}"))
            # In a list (an enum's values) the text is the likelier intent: keep it, so nothing else complains.
            return node.value if in_list else value
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_INT:
            self.problems.append(self._at(node, huge_number_message(len(node.value.lstrip("+-")), MAX_INT)))
            return 0
        if isinstance(value, float) and self.quoted_decimals:
            self.problems.append(self._at(node, f"write {node.value} in quotes (\"{node.value}\"): money and other "
                                                "decimals are text in rule files (YAML would read a binary fraction)"))
            return UnquotedDecimal(node.value)
        return value

    def _collection(self, node: yaml.CollectionNode, path: Path) -> Any:
        if isinstance(node, yaml.MappingNode):
            result: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                key = self.scalar(key_node)
                if not isinstance(key, (str, int, bool)) or isinstance(key_node, yaml.CollectionNode):
                    self.problems.append(self._at(key_node, "a key must be a plain name"))
                    continue
                if key in result:
                    self.problems.append(self._at(key_node, f"duplicate key {key!r}"))
                    continue
                self.document._keys[path + (key,)] = (key_node.start_mark.line, key_node.start_mark.column)
                result[key] = self.build(value_node, path + (key,))
            return result
        return [self.build(item, path + (index,)) for index, item in enumerate(node.value)]

    def scalar(self, node: yaml.Node) -> Any:
        if not isinstance(node, yaml.ScalarNode):
            return None
        if node.tag == _TIMESTAMP_TAG:
            # Dates and instants stay strings: the declarations decide how they are parsed.
            return node.value
        try:
            return self.constructor.construct_object(node, deep=True)
        except yaml.YAMLError:  # a tag safe_load does not know, e.g. !!python/name
            if node.tag.startswith("!("):  # !(x > 0): a negation written as in C
                self.problems.append(self._at(node, f"YAML reads {node.tag} as a tag; write a negation as not (…), "
                                                    "e.g. when: not (x > 0)"))
                return Reported(f"{node.tag} {node.value}")
            self.problems.append(self._at(node, f"unsupported YAML tag {node.tag}; write plain values"))
            return None
        except ValueError:  # an integer past Python's digit limit for text conversion
            self.problems.append(self._at(node, huge_number_message(len(node.value.lstrip("+-")), MAX_INT)))
            return 0

    def _at(self, node: yaml.Node, message: str) -> Problem:
        return Problem(self.document.file, node.start_mark.line + 1, node.start_mark.column + 1, message)

    def _string_scalar(self, node: yaml.ScalarNode) -> _Scalar:
        """Record where each source line of a string starts inside its value, for expression errors."""
        start, end = node.start_mark, node.end_mark
        scalar = _Scalar(start.line, start.column, node.style)
        if node.style in ("|", ">"):
            first_line = start.line + 1
            separator = 1  # "\n" for literal, " " for folded: one character either way
        else:
            first_line = start.line
            separator = 1
        # A block scalar keeps indentation beyond its own; plain and quoted scalars fold it away.
        block_indent = None
        last_line = min(end.line, len(self.lines) - 1)
        if node.style in ("|", ">"):
            first_content = next((line for line in self.lines[first_line:last_line + 1] if line.strip()), "")
            block_indent = len(first_content) - len(first_content.lstrip())
        offset = 0
        for line_number in range(first_line, last_line + 1):
            raw = self.lines[line_number]
            if block_indent is not None and raw.strip() and len(raw) - len(raw.lstrip()) < block_indent:
                break  # the end mark sits on the next key's line
            if line_number == start.line:
                column = start.column + (1 if node.style in ("'", '"') else 0)
            elif block_indent is not None:
                column = block_indent
            else:
                column = len(raw) - len(raw.lstrip())
            content = raw[column:]
            if node.style in ("'", '"') and content.rstrip().endswith(node.style):
                content = content.rstrip()[:-1]
            if not content.strip():
                continue
            scalar.source_lines.append((offset, line_number, column))
            offset += len(content.rstrip()) + separator
        return scalar
