"""Words for the mistakes people make in rule files, in place of parser internals.

The YAML parser and Python's ``ast`` report what they could not read ("mapping values are not allowed
here", "invalid syntax"); these functions look at the text around the error and say what to change:
indentation that does not line up, a full-width character typed with a Chinese input method, ``=``,
``&&`` or ``||`` in a condition, a value YAML reads as something else than what was meant.
"""

from __future__ import annotations

import re
import unicodedata

# Characters a Chinese input method types in place of the ASCII ones YAML and expressions need.
FULL_WIDTH = {
    "\u3000": " ", "（": "(", "）": ")", "，": ",", "：": ":", "＝": "=", "！": "!", "＜": "<", "＞": ">",
    "［": "[", "］": "]", "“": '"', "”": '"', "‘": "'", "’": "'", "＆": "&", "｜": "|", "．": ".",
}
_STRUCTURE_PROBLEMS = ("mapping values are not allowed", "did not find expected key",
                       "did not find expected '-' indicator", "expected <block end>")


def describe_character(character: str) -> str:
    """``'（' (U+FF08 FULLWIDTH LEFT PARENTHESIS)``; the full-width space also gets its Chinese name."""
    name = unicodedata.name(character, "")
    shown = "a full-width space" if character == "\u3000" else repr(character)
    extra = ", 全角空格" if character == "\u3000" else ""
    return f"{shown} (U+{ord(character):04X} {name}{extra})"


def full_width_hint(text: str, start: int = 0) -> tuple[int, str] | None:
    """The first full-width character in ``text`` from ``start`` on, with what to type instead."""
    for offset in range(start, len(text)):
        character = text[offset]
        if character in FULL_WIDTH:
            return offset, (f"{describe_character(character)} here: rule files need the ASCII "
                            f"{'space' if character == chr(0x3000) else repr(FULL_WIDTH[character])} "
                            "(switch the input method to half-width)")
    return None


def yaml_syntax_message(problem: str, context: str | None, line_number: int, column: int, lines: list[str]) -> str:
    """A YAML syntax error in words. ``line_number`` and ``column`` are 0-based, as PyYAML marks are."""
    parser_says = " ".join(part for part in (context, problem) if part)
    line = lines[line_number] if 0 <= line_number < len(lines) else ""
    leading = _leading(line)
    above = _line_above(lines, line_number)
    for number in (line_number, above):  # a full-width space indenting this line or the one above
        text = lines[number] if number is not None and 0 <= number < len(lines) else ""
        if "\u3000" in _leading(text):
            where = "" if number == line_number else f" of line {number + 1}"
            return (f"YAML syntax error: {describe_character(chr(0x3000))} in the indentation{where} (column "
                    f"{text.index(chr(0x3000)) + 1}); indent with normal spaces (the YAML parser says: {parser_says})")
    if 0 <= column < len(line) and line[column] in FULL_WIDTH:
        return (f"YAML syntax error: {describe_character(line[column])}; YAML needs the ASCII "
                f"{FULL_WIDTH[line[column]]!r} (the YAML parser says: {parser_says})")
    if "\t" in leading:
        return "YAML syntax error: a tab in the indentation; YAML indents with spaces only"
    value = line.split(": ", 1)[1].lstrip() if ": " in line else ""
    if value.startswith("!"):
        return ("YAML syntax error: YAML reads a value that starts with '!' as a tag; write a negation as "
                "not (…), e.g. when: not (x > 0)")
    if not any(known in (problem or "") for known in _STRUCTURE_PROBLEMS):
        return f"YAML syntax error: {parser_says}"
    if "mapping values are not allowed" in (problem or "") and ": " in line[:column].lstrip(" -"):
        return ("YAML syntax error: this value contains ': ', which YAML reads as another key; put the whole value "
                "in quotes (e.g. zh: \"注意: …\")")
    indent = len(leading)
    if above is not None:
        above_text = lines[above]
        above_indent = len(above_text) - len(above_text.lstrip(" "))
        above_key = _key(above_text)
        above_has_value = bool(above_key) and bool(above_text.split(":", 1)[1].split(" #")[0].strip())
        if indent > above_indent and above_has_value:
            return (f"YAML syntax error: this line is indented more than '{above_key}:' on line {above + 1}, so YAML "
                    f"reads it as the rest of that value; indent it {above_indent} spaces to line it up with "
                    f"'{above_key}:' (or, if the value on line {above + 1} contains ': ', put that value in quotes)")
        if indent != above_indent and _key(line) and (above_has_value or indent < above_indent):
            return (f"YAML syntax error: this line is indented {indent} spaces but line {above + 1} above it {above_indent}: "
                    "keys of one mapping must line up exactly; indent it like the keys it belongs with "
                    f"(the YAML parser says: {parser_says})")
    if "mapping values are not allowed" in (problem or ""):
        return ("YAML syntax error: a value contains ': ' — put the value in quotes (e.g. zh: \"注意: …\"), "
                "or check that this line is indented like the keys above it")
    return f"YAML syntax error: check the indentation of this line against the lines above ({parser_says})"


def _leading(line: str) -> str:
    return line[: len(line) - len(line.lstrip(" \t\u3000"))]


def _line_above(lines: list[str], line_number: int) -> int | None:
    for index in range(min(line_number, len(lines)) - 1, -1, -1):
        stripped = lines[index].strip()
        if stripped and not stripped.startswith("#"):
            return index
    return None


def _key(line: str) -> str | None:
    match = re.match(r"\s*(?:-\s+)?([A-Za-z_][\w.-]*)\s*:(\s|$)", line)
    return match.group(1) if match else None


# Operators of other languages, outside string literals: what the rule language writes instead.
_FOREIGN_OPERATORS = re.compile(r"""('[^']*'|"[^"]*")|(&&|\|\||===?|!==?|!|(?<![=!<>])=(?!=))""")
_INSTEAD = {"&&": "and", "||": "or", "!": "not", "=": "==", "===": "==", "!==": "!="}


def expression_syntax_hint(text: str) -> tuple[int, str] | None:
    """Why ``text`` is not a rule expression, when it is a mistake people make, with its offset."""
    full_width = full_width_hint(text)
    if full_width is not None:
        return full_width
    for match in _FOREIGN_OPERATORS.finditer(text):
        operator = match.group(2)
        if operator is None or operator in ("==", "!="):
            continue
        instead = _INSTEAD[operator]
        what = "'=' sets a value in programming languages" if operator == "=" else f"'{operator}' is not an operator here"
        return match.start(2), f"syntax error in expression: {what}; did you mean '{instead}'?"
    return None


def huge_number_message(digits: int, limit: int) -> str:
    return (f"this number ({digits} digits) is too large: whole numbers in rule files are at most {limit} "
            "(the largest the matcher compares exactly)")
