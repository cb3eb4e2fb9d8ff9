"""The checked, in-memory form of a rule file: what the loader builds and the compiler consumes."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from engine.runtime.values import Type

if TYPE_CHECKING:
    from engine.language.expressions import Expr

EFFECTS = ("deny", "defer", "review", "warn", "oblige")
OUTCOMES = ("allow", "deny", "defer", "review")
# What an invariant reads of a decision's result, beside its facts and values.
RESULT_NAMES = ("outcome", "reasons", "warnings", "obligations", "values", "next_eligible_at")
# Outcome precedence: the first effect in this list that fired decides the outcome.
OUTCOME_PRECEDENCE = (("deny", "deny"), ("review", "review"), ("defer", "defer"))


class _Missing:
    """The marker of "no default declared": one object, also after pickling (the log's writer process)."""

    def __reduce__(self) -> str:
        return "MISSING"

    def __repr__(self) -> str:
        return "MISSING"


MISSING = _Missing()


@dataclass
class FieldSpec:
    """A declared fact: a scalar, an object with ``fields`` or a list of ``item``."""

    name: str
    path: str  # dotted, e.g. "actor.quota.enabled"; list items get "order.items[]"
    type: Type
    required: bool = False
    default: Any = MISSING
    minimum: Any = None
    maximum: Any = None
    description: str = ""
    sensitive: bool = False  # kept only as an HMAC in the decision log
    fields: dict[str, FieldSpec] = field(default_factory=dict)
    item: FieldSpec | None = None

    @property
    def always_present(self) -> bool:
        return self.required or self.default is not MISSING


class Localized(str):
    """A description or note written in both languages (``{zh: …, en: …}``): as a string it is the English
    (else the Chinese), so every reader of plain text keeps working; :meth:`in_language` gives either."""

    texts: dict[str, str]

    def __new__(cls, texts: dict[str, str]) -> Localized:
        text = super().__new__(cls, texts.get("en") or texts.get("zh", ""))
        text.texts = texts
        return text

    def __reduce__(self) -> tuple[Any, ...]:  # copies and pickles are made from both texts
        return Localized, (self.texts,)

    def in_language(self, lang: str) -> str:
        return self.texts.get(lang) or str(self)


def localized(raw: Any) -> str:
    """A rule file's description or note: a plain string, or ``{zh, en}`` as a :class:`Localized`."""
    if isinstance(raw, dict):
        return Localized({lang: str(raw[lang]) for lang in ("zh", "en") if raw.get(lang)})
    return "" if raw is None else str(raw)


def in_language(text: Any, lang: str) -> str:
    """``text`` in ``lang`` when it was written in both languages, else as written."""
    return text.in_language(lang) if isinstance(text, Localized) else ("" if text is None else str(text))


@dataclass
class Constant:
    name: str
    type: Type
    value: Any
    note: str = ""


@dataclass
class Table:
    """Rows keyed by the values of an enum; a missing row or cell reads as null."""

    name: str
    key: Type
    columns: dict[str, Type]
    rows: dict[str, dict[str, Any]]
    note: str = ""


@dataclass
class Derived:
    """A value the engine computes in Python before matching; ``output`` ones are returned."""

    name: str
    expr: Expr | None  # None for an object built from ``fields``
    output: bool = False
    description: str = ""
    fields: dict[str, Expr] = field(default_factory=dict)


@dataclass
class Counter:
    """A usage count the store keeps; a caller-supplied ``fact`` overrides the stored value."""

    name: str
    type: Type
    key: list[Expr]
    reset: str  # "shanghai_day" | "never"
    add: Expr
    fact: Expr | None = None
    description: str = ""


@dataclass
class Rule:
    id: str
    qualified_id: str  # "payout.initiate/payout-enabled"
    effect: str
    when: Expr
    when_text: str
    source: str
    code: str | None = None
    messages: dict[str, str] = field(default_factory=dict)
    placeholders: dict[str, Expr] = field(default_factory=dict)  # "{payout.amount}" -> its expression
    obligations: dict[str, Any] = field(default_factory=dict)  # name -> literal or Expr
    until: Expr | None = None
    description: str = ""
    assumptions: tuple[str, ...] = ()  # constants marked ASSUMPTION that the condition reads


@dataclass
class Invariant:
    """A property of a decision that ``rulesvc verify`` proves for every valid request (SPEC §13):
    whenever ``when`` holds, ``then`` holds. Both read the facts, constants, counters, derived values,
    ``now`` and the result (``outcome``, ``reasons``, ``warnings``, ``obligations.*``, ``values.*``,
    ``next_eligible_at``)."""

    id: str
    qualified_id: str  # "payout.initiate/amount-limit-never-allowed"
    when: Expr
    then: Expr
    when_text: str
    then_text: str
    source: str
    messages: dict[str, str] = field(default_factory=dict)  # zh / en
    description: str = ""


@dataclass(frozen=True)
class Locator:
    """Where the text of one expression lies in its rule file: a character offset of the expression
    becomes ``(file, line, column)``, 1-based (a literal block spans several lines)."""

    file: str
    lines: tuple[tuple[int, int, int], ...]  # (first offset, 0-based line, 0-based column) of each source line

    def at(self, offset: int) -> tuple[str, int, int]:
        line, column = self.lines[0][1], self.lines[0][2]
        for start, source_line, source_column in self.lines:
            if offset >= start:
                line, column = source_line, source_column + (offset - start)
        return self.file, line + 1, column + 1


@dataclass
class Decision:
    name: str  # "payout.initiate"
    domain: str
    description: str
    source: str
    facts: dict[str, FieldSpec]
    constants: dict[str, Constant]
    counters: list[Counter]
    derived: list[Derived]
    obligations: dict[str, Any]
    rules: list[Rule]
    record: dict[str, Expr] = field(default_factory=dict)  # business keys of decision records
    enum_labels: dict[str, dict[str, str]] = field(default_factory=dict)  # enum -> value -> label
    partition: Expr | None = None  # groups the stored keys of a commit (one hash slot on a Redis Cluster)
    position: tuple[int, int] = (1, 1)  # line and column of the decision in its file, for load-time problems
    invariants: list[Invariant] = field(default_factory=list)

    def message_labels(self, expr: Expr, lang: str) -> dict[str, str] | None:
        """The labels a ``lang`` message shows for placeholder ``expr`` instead of its enum codes (淘宝, not
        ``taobao``): the enum's, in Chinese messages (labels are Chinese); None where the code is shown."""
        kind = getattr(expr, "type", None)
        if lang != "zh" or kind is None or kind.kind != "enum":
            return None
        return self.enum_labels.get(kind.enum or "") or None


@dataclass
class Domain:
    """One loaded rule file."""

    name: str
    file: str
    version: str  # "sha256:<hex of the file's bytes>"
    loaded_at: datetime
    title: str
    decisions: dict[str, Decision]
    uses_calendar: bool = False  # its version then also covers the calendar data
    text: str = ""  # the rule file as loaded: a version is kept with the text it was made from
    source: str = ""
    constants: dict[str, Constant] = field(default_factory=dict)
    tables: dict[str, Table] = field(default_factory=dict)
    enums: dict[str, tuple[str, ...]] = field(default_factory=dict)


def sensitive_paths(specs: dict[str, FieldSpec]) -> tuple[str, ...]:
    """The dotted paths of the facts declared ``sensitive`` (list items as ``items[].field``)."""
    found: list[str] = []
    for spec in specs.values():
        if spec.sensitive:
            found.append(spec.path)
        found.extend(sensitive_paths(spec.fields))
        if spec.item is not None:
            found.extend(sensitive_paths({spec.item.name: spec.item}))
    return tuple(found)


def defaulted_paths(specs: dict[str, FieldSpec], raw: Any) -> list[str]:
    """The paths of the facts a request left out (or sent null) that a declared default filled in."""
    found: list[str] = []
    _collect_defaulted(_defaults_tree(specs), raw, found)
    return found


# The declarations a default lies in or under, per facts declaration (they live as long as their model):
# most fields have none, and a decision-log entry asks this for every decision.
_DEFAULT_TREES: dict[int, tuple[dict[str, FieldSpec], list[tuple[str, str | None, list[Any]]]]] = {}


def _defaults_tree(specs: dict[str, FieldSpec]) -> list[tuple[str, str | None, list[Any]]]:
    kept = _DEFAULT_TREES.get(id(specs))
    if kept is not None and kept[0] is specs:
        return kept[1]
    tree = []
    for name, spec in specs.items():
        below = _defaults_tree(spec.fields) if spec.fields else []
        if spec.default is not MISSING or below:
            tree.append((name, spec.path if spec.default is not MISSING else None, below))
    if len(_DEFAULT_TREES) >= 512:  # reloads make new declarations: the old ones are not kept forever
        _DEFAULT_TREES.clear()
    _DEFAULT_TREES[id(specs)] = (specs, tree)
    return tree


def _collect_defaulted(tree: list[tuple[str, str | None, list[Any]]], raw: Any, found: list[str]) -> None:
    if not isinstance(raw, dict):
        return
    for name, path, below in tree:
        value = raw.get(name)
        if value is None:
            if path is not None:
                found.append(path)
        elif below:
            _collect_defaulted(below, value, found)

