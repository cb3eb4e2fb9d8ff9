"""The console's words in Chinese (the default) and English, and the remembered choice between them.

Rule content (messages, notes, descriptions) comes from the rule files, which carry their own zh/en
texts; the gettext catalogs in translations/ hold only the console's own labels, and the tables below
put the engine's English (fact and rule-file problems) into Chinese. A language switch sets a cookie, so the choice
survives new tabs and browser restarts.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from babel.messages.pofile import read_po
from flask import Flask, g, request
from flask_babel import Babel, gettext

from engine.reference import facts
from engine.runtime.values import Type

LANGUAGES = ("zh", "en")
DEFAULT_LANGUAGE = "zh"
COOKIE = "rulesvc_lang"
COOKIE_MAX_AGE = 365 * 24 * 3600

# The console's own words live in gettext catalogs beside this module (translations/<locale>/LC_MESSAGES/
# messages.po, compiled to .mo by `make messages`), read through Flask-Babel. Message ids are keys
# ("nav.home"); {name} placeholders are filled by t(key, name=...).
TRANSLATIONS = Path(__file__).resolve().parent / "translations"
LOCALES = {"zh": "zh", "en": "en"}  # the console's languages and the Babel locales (and catalog folders) they are read in


def _catalog_keys() -> frozenset[str]:
    with (TRANSLATIONS / "en" / "LC_MESSAGES" / "messages.po").open("rb") as stream:
        return frozenset(message.id for message in read_po(stream) if message.id)


KEYS = _catalog_keys()  # every key the catalogs hold (a missing one would show as the key itself)


def init_babel(app: Flask) -> None:
    """Flask-Babel for the app: the console's catalogs, the language of :func:`current_language`, and
    dates in Shanghai time."""
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", str(TRANSLATIONS))
    app.config.setdefault("BABEL_DEFAULT_TIMEZONE", "Asia/Shanghai")
    Babel(app, locale_selector=lambda: LOCALES[current_language()])


def has_text(key: str) -> bool:
    return key in KEYS


# Messages of the fact validation (engine/reference/facts.py), shown in Chinese next to their fields.
_FIELD_MESSAGES_ZH: list[tuple[re.Pattern[str], str]] = [(re.compile(pattern), zh) for pattern, zh in (
    (f"^{re.escape(facts.REQUIRED)}$", "必填项"),
    (f"^{re.escape(facts.UNKNOWN)}$", "未声明的字段"),
    (f"^{re.escape(facts.NULL)}$", "不能为空"),
    (f"^{re.escape(facts.NOT_A_LIST)}$", "必须是列表"),
    (f"^{re.escape(facts.NOT_AN_OBJECT)}$", "必须是一个对象"),
    (r"^must be true or false$", "必须选择 是 或 否"),
    (r"^must be a whole number$", "必须是整数"),
    (r"^must be a string$", "必须是文本"),
    (r"^must be one of: (.*)$", r"必须是以下之一：\1"),
    (r"^must not be negative$", "不能为负数"),
    (r"^must have at most two decimal places \(fen\)$", "最多两位小数（到分）"),
    (r"^must be an amount of money such as \"12\.50\"$", "必须是金额，例如 12.50"),
    (r"^must be an amount of money as a string or a number$", "必须是金额"),
    (r"^must be an ISO 8601 timestamp.*$", "必须是带时区的时刻，例如 2026-11-20T10:00:00+08:00"),
    (r"^must carry a UTC offset.*$", "必须带时区偏移（例如 +08:00 或 Z）"),
    (r"^must be a date YYYY-MM-DD$", "必须是日期 YYYY-MM-DD"),
    (r"^must be at least (.*)$", r"不能小于 \1"),
    (r"^must be at most (.*)$", r"不能大于 \1"),
    (r"^must be between (.*) and (.*)$", r"必须在 \1 与 \2 之间"),
    (r"^must be an RFC 3339 timestamp.*$", "必须是带时区的时刻，例如 2026-11-20T10:00:00+08:00"),
    (r"^must not have spaces around it$", "前后不能有空格"),
    (r"^is not a real moment.*$", "不是真实存在的时刻（请检查月、日、时和时区）"),
    (r"^must be a date (string YYYY-MM-DD|written YYYY-MM-DD.*)$", "必须是日期 YYYY-MM-DD，例如 2026-11-16"),
    (r"^is not a date that exists.*$", "不是真实存在的日期（请检查月和日）"),
    (r"^'(.*)' has a full-width colon .*$", r"“\1”里用了全角冒号“：”：请切换到半角输入法，写成英文冒号“:”"),
    (r"^must be a time of day.*$", "必须是时刻，例如 09:00 或 20:00:00"),
    (r"^must be quoted: unquoted, (.*) is read as the number .*$",
     r"必须加引号：不加引号时 \1 会被读成数字，请写成 “\1” 并加引号"),
    (r"^a time of day is Asia/Shanghai local time and carries no offset$", "时刻按北京时间，不带时区"),
)]


# A rule file's problems (the engine speaks English, and the API keeps it): the common ones in Chinese
# for the console. Tried in order, the first match wins; what no pattern knows is shown as the engine said it.
_DID_YOU_MEAN = re.compile(r" \(did you mean '([^']*)'\?\)")
_PROBLEM_MESSAGES_ZH: list[tuple[re.Pattern[str], str]] = [(re.compile(pattern), zh) for pattern, zh in (
    (r"^in message placeholder: (.*)$", r"提示信息的占位符中：\1"),
    (r"^undeclared name '([^']*)'(.*)$", r"未声明的名称 '\1'\2"),
    (r"^undeclared fact ([^ ]+)(.*)$", r"未声明的事实 \1\2"),
    (r"^unknown key '([^']*)' in the file(.*)$", r"文件中有未知的键 '\1'\2"),
    (r"^unknown key '([^']*)' in (.*?)( （.*）)?$", r"\2 中有未知的键 '\1'\3"),
    (r"^the file: missing required key '([^']*)'$", r"文件缺少必填的键 '\1'"),
    (r"^(.*): missing required key '([^']*)'$", r"\1 缺少必填的键 '\2'"),
    (r"^duplicate key '([^']*)'$", r"重复的键 '\1'"),
    (r"^unknown type '([^']*)'(.*?); use one of (.*) or an enum declared under enums$",
     r"未知的类型 '\1'\2；可用的类型：\3，或在 enums 下声明的枚举"),
    (r"^constant (\w+): (.*)$", r"常量 \1：\2"),
    (r"^'([^']*)' is not a value of enum (\w+)(.*)$", r"'\1' 不是枚举 \2 的取值\3"),
    (r"^expression must be (\w+), but it is (\w+)$", r"表达式应为 \1 类型，但它是 \2 类型"),
    (r"^cannot compare (\w+) with (\w+)$", r"不能比较 \1 与 \2"),
    (r"^(\w+)\(\) argument (\d+) must be (\w+), got (\w+)$", r"\1() 的第 \2 个参数应为 \3 类型，实际是 \4"),
    (r"^syntax error in expression: (.*)$", r"表达式语法错误：\1"),
    (r"^rule ([\w-]+): a defer rule needs until.*$", r"规则 \1：defer（暂缓）规则需要 until（何时可以再次询问）"),
    (r"^rule ([\w-]+): a (\w+) rule needs a reason code$", r"规则 \1：\2 规则需要一个原因代码"),
    (r"^reason code (\w+) has no messages; add it under codes with zh and en(.*)$",
     r"原因代码 \1 没有提示信息：请在 codes 下为它加上 zh 和 en\2"),
    (r"^reason code (\w+) has messages but no rule uses it$", r"原因代码 \1 有提示信息，但没有规则使用它"),
    (r"^duplicate rule id '([^']*)'.*$", r"规则 id '\1' 重复"),
    (r"^table (\w+) has no column '([^']*)'(.*)$", r"表 \1 没有列 '\2'\3"),
    (r"^fact (\S+) is (\w+), it has no field '([^']*)'$", r"事实 \1 是 \2 类型，没有字段 '\3'"),
    (r"^YAML syntax error: this line is indented (\d+) spaces but line (\d+) above it (\d+): keys of one mapping "
     r"must line up exactly.*$", r"YAML 语法错误：这一行缩进 \1 个空格，而上面第 \2 行是 \3 个：同一层的键必须严格对齐"),
    (r"^YAML syntax error: a tab in the indentation.*$", "YAML 语法错误：缩进里有制表符（Tab）；YAML 只能用空格缩进"),
    (r"^YAML syntax error: (.*)$", r"YAML 语法错误：\1"),
    (r"^the file is not UTF-8 text.*$", "文件不是 UTF-8 编码：请在编辑器里另存为 UTF-8（另存为 → 编码 UTF-8）"),
    (r"^no rule files \(\*\.yaml\) found$", "没有找到规则文件（*.yaml）"),
)]


def problem_message(message: str) -> str:
    """A rule file's problem in the current language (:data:`_PROBLEM_MESSAGES_ZH`); values stay as written."""
    if current_language() == "en":
        return message
    text = _DID_YOU_MEAN.sub(r"（是不是 '\1'？）", message)
    for pattern, zh in _PROBLEM_MESSAGES_ZH:
        if pattern.match(text):
            translated = pattern.sub(zh, text)
            head, colon, detail = translated.partition("：")
            if not colon or not detail:
                return translated
            inner = problem_message(detail)  # a problem inside a problem ("in message placeholder: …")
            return f"{head}{colon}{inner if inner != detail else field_message(detail)}"
    return text


def current_language() -> str:
    """The language of this request: the cookie's choice, else Chinese."""
    if "lang" not in g:
        chosen = request.cookies.get(COOKIE, "")
        g.lang = chosen if chosen in LANGUAGES else DEFAULT_LANGUAGE
    return g.lang


def t(key: str, **values: Any) -> str:
    """The console text ``key`` in the current language, with ``{name}`` placeholders filled."""
    text = gettext(key)
    return text.format(**values) if values else text


def holiday_name(name: str) -> str:
    """A holiday's name in the current language (the calendar files hold chinese-calendar's English names)."""
    key = f"holiday.{name}"
    return t(key) if has_text(key) else name


def type_label(kind: Type) -> str:
    """A declared type as people read it: 金额（元）, 枚举 order_state, 列表 [文本]."""
    if kind.kind == "list" and kind.item is not None:
        return f"{t('type.list')} [{type_label(kind.item)}]"
    if kind.kind == "enum":
        return f"{t('type.enum')} {kind.enum}"
    return t(f"type.{kind.kind}") if has_text(f"type.{kind.kind}") else kind.kind


def field_message(message: str) -> str:
    """A fact-validation message in the current language (the engine speaks English)."""
    if current_language() == "en":
        return message
    for pattern, zh in _FIELD_MESSAGES_ZH:
        if pattern.match(message):
            return pattern.sub(zh, message)
    return message
