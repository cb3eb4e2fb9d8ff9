"""The console's words in Chinese (the default) and English, and the remembered choice between them.

Rule content (messages, notes, descriptions) comes from the rule files, which carry their own zh/en
texts; this table holds only the console's own labels. A language switch sets a cookie, so the choice
survives new tabs and browser restarts.
"""

from __future__ import annotations

import re
from typing import Any

from flask import g, request

from engine.reference import facts
from engine.runtime.values import Type

LANGUAGES = ("zh", "en")
DEFAULT_LANGUAGE = "zh"
COOKIE = "rulesvc_lang"
COOKIE_MAX_AGE = 365 * 24 * 3600

# key -> (zh, en); {name} placeholders are filled by t(key, name=...)
TEXT: dict[str, tuple[str, str]] = {
    # frame
    "app.name": ("规则控制台", "Policy console"),
    "app.tagline": ("商家资金规则：阅读、试算、测试与变更预览", "Merchant money-flow policies: read, try, test, preview changes"),
    "nav.home": ("规则总览", "Policies"),
    "nav.scenarios": ("场景测试", "Scenarios"),
    "nav.validate": ("规则校验", "Validate"),
    "nav.impact": ("影响分析", "Impact"),
    "nav.log": ("决策记录", "Decisions"),
    "nav.calendar": ("工作日历", "Calendar"),
    "nav.drafts": ("规则变更", "Changes"),
    "nav.versions": ("版本记录", "Versions"),
    "nav.skip": ("跳到正文", "Skip to content"),
    "lang.switch": ("English", "中文"),
    "lang.switch_label": ("切换到英文", "Switch to Chinese"),
    "auth.signed_in": ("管理员已登录", "Signed in as admin"),
    "auth.signed_in_audit": ("审计员已登录", "Signed in as auditor"),
    "auth.signed_in_qa": ("QA 已登录", "Signed in as QA"),
    "auth.sign_in": ("登录", "Sign in"),
    "auth.sign_out": ("退出登录", "Sign out"),
    "auth.token": ("管理员、审计或 QA 令牌", "Admin, audit or QA token"),
    "auth.token_help": ("即服务端的 RULESVC_ADMIN_TOKEN（全部功能）、RULESVC_AUDIT_TOKEN（查看决策记录）或 "
                        "RULESVC_QA_TOKEN（查看决策记录，敏感信息脱敏），本浏览器会话内只需输入一次；控制台不会显示或记录它。",
                        "The server's RULESVC_ADMIN_TOKEN (everything), RULESVC_AUDIT_TOKEN (reading the decisions made) "
                        "or RULESVC_QA_TOKEN (reading them with sensitive facts masked). Enter it once per browser "
                        "session; the console never shows or logs it."),
    "auth.submit": ("登录", "Sign in"),
    "auth.wrong": ("令牌不正确。", "That token is not correct."),
    "auth.disabled": ("管理功能未开启：服务端没有设置 RULESVC_ADMIN_TOKEN。请让运维设置后重启服务。",
                      "Admin features are off: the server has no RULESVC_ADMIN_TOKEN. Ask whoever runs the service "
                      "to set it and restart."),
    "auth.all_disabled": ("登录未开启：服务端没有设置 RULESVC_ADMIN_TOKEN、RULESVC_AUDIT_TOKEN 或 RULESVC_QA_TOKEN。"
                          "请让运维设置后重启服务。",
                          "Sign-in is off: the server has none of RULESVC_ADMIN_TOKEN, RULESVC_AUDIT_TOKEN and "
                          "RULESVC_QA_TOKEN. Ask whoever runs the service to set one and restart."),
    "auth.needed": ("此操作需要管理员令牌。", "This needs the admin token."),
    "auth.needed_link": ("先登录", "Sign in first"),
    "auth.done": ("已登录，可以运行场景、校验与影响分析。", "Signed in: you can run scenarios, validation and impact."),
    "auth.done_reader": ("已登录，可以查看决策记录。", "Signed in: you can read the decisions made."),
    "auth.out": ("已退出登录。", "Signed out."),
    # outcomes and effects
    "outcome.allow": ("通过", "allowed"),
    "outcome.deny": ("拒绝", "denied"),
    "outcome.defer": ("暂缓", "deferred"),
    "outcome.review": ("人工审核", "needs review"),
    "effect.deny": ("拒绝", "deny"),
    "effect.defer": ("暂缓", "defer"),
    "effect.review": ("审核", "review"),
    "effect.warn": ("提醒", "warn"),
    "effect.oblige": ("附加义务", "oblige"),
    # types
    "type.str": ("文本", "text"),
    "type.int": ("整数", "whole number"),
    "type.money": ("金额（元）", "money (CNY)"),
    "type.instant": ("时刻", "instant"),
    "type.date": ("日期", "date"),
    "type.time": ("时间", "time of day"),
    "type.bool": ("是/否", "yes/no"),
    "type.list": ("列表", "list"),
    "type.object": ("对象", "object"),
    "type.enum": ("枚举", "choice"),
    "type.duration": ("时长", "duration"),
    "format.money": ("如 12.50，最多两位小数", "e.g. 12.50, at most two decimals"),
    "format.instant": ("带时区，如 2026-11-20T10:00:00+08:00", "with offset, e.g. 2026-11-20T10:00:00+08:00"),
    "format.date": ("YYYY-MM-DD，上海日期", "YYYY-MM-DD, a Shanghai date"),
    "format.time": ("HH:MM，上海时间", "HH:MM, Shanghai time"),
    "format.int": ("整数", "a whole number"),
    "format.lines": ("每行一项", "one per line"),
    "yes": ("是", "yes"),
    "no": ("否", "no"),
    "unset": ("（不填）", "(not given)"),
    "required": ("必填", "required"),
    "optional": ("选填", "optional"),
    "default": ("默认", "default"),
    # index
    "home.title": ("规则总览", "Policies"),
    "home.intro": ("每个领域一个规则文件。点击“规则”阅读政策，点击“试算”用示例数据试一次决策。",
                   "One rule file per domain. Open “Rules” to read a policy, “Try” to run a decision on example facts."),
    "home.file": ("文件", "File"),
    "home.version": ("版本", "Version"),
    "home.loaded": ("加载于", "Loaded"),
    "home.rules": ("规则", "Rules"),
    "home.try": ("试算", "Try"),
    "home.decisions": ("决策", "Decisions"),
    "home.reload_failed": ("最近一次重新加载失败，正在运行的仍是之前的规则：",
                           "The last reload failed; the rules in force are the earlier ones:"),
    "home.rule_count": ("{count} 条规则", "{count} rules"),
    # rules page
    "rules.title": ("{title}", "{title}"),
    "rules.source": ("来源", "Source"),
    "rules.facts": ("输入事实", "Facts"),
    "rules.fact": ("事实", "Fact"),
    "rules.type": ("类型", "Type"),
    "rules.req": ("必填", "Required"),
    "rules.values": ("可选值", "Values"),
    "rules.description": ("说明", "Description"),
    "rules.policy": ("规则", "Rules"),
    "rules.id": ("规则", "Rule"),
    "rules.effect": ("效果", "Effect"),
    "rules.code": ("原因代码", "Code"),
    "rules.message": ("提示语", "Message"),
    "rules.condition": ("条件（满足时生效）", "Condition (applies when true)"),
    "rules.scenarios": ("覆盖的场景", "Scenarios"),
    "rules.case_count": ("{count} 个场景用例", "{count} scenario cases"),
    "rules.no_scenarios": ("没有场景触发此规则", "no scenario makes it fire"),
    "rules.obligations": ("义务", "Obligations"),
    "rules.constants": ("常量", "Constants"),
    "rules.tables": ("表", "Tables"),
    "rules.name": ("名称", "Name"),
    "rules.value": ("值", "Value"),
    "rules.note": ("备注", "Note"),
    "rules.assumption": ("待确认假设", "Assumption"),
    "rules.assumption_help": ("该常量是待与平台确认的假设值。", "This constant is an assumption to confirm with the platform."),
    "rules.derived": ("派生值", "Derived values"),
    "rules.counters": ("计数器", "Counters"),
    "rules.counter_key": ("按", "per"),
    "rules.counter_fact": ("可由事实覆盖", "overridden by fact"),
    "rules.reset.shanghai_day": ("每个上海自然日清零", "resets every Shanghai day"),
    "rules.reset.never": ("不清零", "never resets"),
    "rules.output": ("返回", "returned"),
    "rules.all": ("以下全部成立", "all of"),
    "rules.any": ("以下任一成立", "any of"),
    "rules.none": ("以下均不成立", "none of"),
    "rules.not_all": ("以下并非全部成立", "not all of"),
    "rules.try_decision": ("试算此决策", "Try this decision"),
    "rules.defaults_obligations": ("默认义务", "Default obligations"),
    "rules.until": ("暂缓至", "deferred until"),
    "rules.default_value": ("默认值 {value}", "default {value}"),
    "rules.range": ("范围", "range"),
    # try page
    "try.title": ("试算 {decision}", "Try {decision}"),
    "try.prefill": ("预填数据", "Prefill from"),
    "try.prefill_example": ("示例 {file}", "example {file}"),
    "try.prefill_case": ("场景 {file} · {case}", "scenario {file} · {case}"),
    "try.prefill_empty": ("空白表单", "an empty form"),
    "try.prefill_go": ("载入", "Load"),
    "try.steps_note": ("该场景有 {count} 个步骤，表单载入的是第一步（不含之前步骤的提交）。",
                       "This case has {count} steps; the form holds the first step (without earlier steps' commits)."),
    "try.now": ("决策时刻 now", "Decide at (now)"),
    "try.now_help": ("留空则使用服务器当前时间；格式：带时区，如 2026-11-20T10:00:00+08:00。",
                     "Leave empty for the server clock. Format: with an offset, e.g. 2026-11-20T10:00:00+08:00."),
    "try.submit": ("试算", "Decide"),
    "try.include": ("填写此项", "Include"),
    "try.add_item": ("添加一项", "Add an item"),
    "try.remove_item": ("删除此项", "Remove this item"),
    "try.item": ("第 {number} 项", "Item {number}"),
    "try.no_items": ("（暂无）", "(none)"),
    "try.errors": ("输入有误，请修改标出的字段：", "Some facts are not valid; fix the marked fields:"),
    "try.result": ("决策结果", "Decision"),
    "try.reasons": ("原因", "Reasons"),
    "try.warnings": ("提醒", "Warnings"),
    "try.obligations": ("义务", "Obligations"),
    "try.values": ("计算值", "Values"),
    "try.next_eligible_at": ("最早可执行时间", "Next eligible at"),
    "try.trace": ("逐条规则的判断过程", "How each rule was judged"),
    "try.trace_help": ("高亮的行是决定结果的规则。", "Highlighted rows are the rules that decided the outcome."),
    "try.fired": ("生效", "Fired"),
    "try.fired_yes": ("生效", "fired"),
    "try.fired_no": ("未生效", "did not fire"),
    "try.conditions": ("条件与取值", "Conditions and values"),
    "try.decided": ("决定结果", "decided"),
    "try.decision_id": ("决策编号", "Decision id"),
    "try.version": ("规则版本", "Ruleset version"),
    "try.evaluated_at": ("决策时刻", "Evaluated at"),
    "try.none": ("无", "none"),
    "try.json": ("以 JSON 查看", "As JSON"),
    "try.facts_json": ("提交的事实", "Facts sent"),
    "try.zh": ("中文", "Chinese"),
    "try.en": ("英文", "English"),
    "try.no_commit": ("试算不会提交、不会计数，也不会写入记录。", "Trying never commits, counts or records anything."),
    # scenarios
    "scen.title": ("场景测试", "Scenario tests"),
    "scen.intro": ("运行随服务提供的 QA 场景文件，或上传一个场景文件，针对当前生效的规则运行。",
                   "Run the QA scenario files shipped with the service, or upload one, against the rules in force."),
    "scen.shipped": ("内置场景", "Shipped suites"),
    "scen.none_shipped": ("没有找到内置场景文件。", "No shipped scenario files were found."),
    "scen.file": ("场景文件", "Scenario file"),
    "scen.cases": ("用例数", "Cases"),
    "scen.decision": ("决策", "Decision"),
    "scen.run_selected": ("运行所选", "Run selected"),
    "scen.run_all": ("全部运行（不含自动生成的用例集）", "Run all (but the generated suites)"),
    "scen.upload": ("上传场景文件", "Upload a scenario file"),
    "scen.run_upload": ("运行上传的文件", "Run the uploaded file"),
    "scen.pick_one": ("请至少选择一个场景文件或上传一个文件。", "Pick at least one scenario file or upload one."),
    "scen.results": ("结果", "Results"),
    "scen.summary": ("{passed} 个通过，{failed} 个失败", "{passed} passed, {failed} failed"),
    "scen.problems": ("场景文件有问题：", "The scenario file has problems:"),
    "scen.case": ("用例", "Case"),
    "scen.status": ("结果", "Result"),
    "scen.pass": ("通过", "pass"),
    "scen.fail": ("失败", "fail"),
    "scen.expected_actual": ("期望与实际", "Expected vs actual"),
    "scen.no_decision": ("无决策（无效输入）", "no decision (invalid input)"),
    "scen.coverage": ("规则覆盖", "Rule coverage"),
    "scen.coverage_help": ("每条规则在多少个用例中生效、多少个用例中未生效；从未生效的规则标为未覆盖。",
                           "For each rule: in how many cases it fired and in how many it did not; "
                           "rules that never fired are marked."),
    "scen.fired_in": ("生效用例", "Fired in"),
    "scen.not_fired_in": ("未生效用例", "Not fired in"),
    "scen.uncovered": ("未覆盖", "never fired"),
    "scen.percent": ("{percent}% 的规则被覆盖", "{percent}% of rules fired in some case"),
    "scen.open_in_try": ("在试算中打开", "Open in Try"),
    "scen.too_many": ("场景文件最多 {limit} 个用例。", "A scenario file may hold at most {limit} cases."),
    # proofs (SPEC §13)
    "proof.title": ("规则证明", "Proofs"),
    "proof.intro": ("求解器对任何合法请求检查这些规则：哪些结果可能出现、有没有永不触发或总是触发的规则、计算能否出错、"
                    "文件中声明的不变式是否成立。每个反例都已由服务实际判定验证。",
                    "A solver checks these rules against every valid request: which outcomes can happen, whether a rule "
                    "never or always fires, whether evaluation can fail, and whether the file's invariants hold. "
                    "Every witness was decided by the service itself."),
    "proof.all_proved": ("{decisions} 个决策全部得到证明", "all {decisions} decisions proved"),
    "proof.summary": ("{problems} 个问题，{unknown} 项未能判定", "{problems} problems, {unknown} not settled"),
    "proof.outcomes": ("可能的结果", "Outcomes"),
    "proof.reachable": ("可能出现", "reachable"),
    "proof.unreachable": ("不会出现", "unreachable"),
    "proof.unknown": ("未能判定", "unknown"),
    "proof.proved": ("已证明", "proved"),
    "proof.violated": ("被违反", "violated"),
    "proof.invariant": ("不变式", "Invariant"),
    "proof.status": ("结论", "Result"),
    "proof.where": ("位置", "Where"),
    "proof.witness": ("反例请求", "Witness request"),
    "proof.dead": ("规则 {rule} 对任何合法请求都不会触发。", "no valid request fires {rule}."),
    "proof.always": ("规则 {rule} 对每个合法请求都会触发。", "every valid request fires {rule}."),
    "proof.error": ("{expression} 可能计算失败（{what}）。", "{expression} can fail ({what})."),
    "proof.unknown_item": ("未能判定 {what}", "not settled: {what}"),
    # validate
    "val.title": ("规则校验", "Validate a rule file"),
    "val.intro": ("粘贴或上传一个规则文件（YAML）。校验只检查，不会启用任何规则。",
                  "Paste or upload a rule file (YAML). Validation only checks: nothing is activated."),
    "val.start_from": ("从当前规则开始编辑", "Start from a rule file in force"),
    "val.load": ("载入", "Load"),
    "val.file_name": ("文件名", "File name"),
    "val.text": ("规则文件内容", "Rule file text"),
    "val.upload": ("或上传文件", "Or upload a file"),
    "val.submit": ("校验", "Validate"),
    "val.ok": ("没有发现问题：领域 {domain}，{decisions} 个决策，{rules} 条规则。",
               "No problems: domain {domain}, {decisions} decisions, {rules} rules."),
    "val.problems": ("发现 {count} 个问题", "{count} problems found"),
    "val.replaces": ("将替换当前的 {file}（版本 {version}）。", "It would replace {file} in force (version {version})."),
    "val.new_domain": ("当前没有领域 {domain}：这是一个新文件。", "No domain {domain} is in force: this is a new file."),
    "val.where": ("第 {line} 行第 {column} 列", "line {line}, column {column}"),
    "val.empty": ("请粘贴或上传规则文件。", "Paste or upload a rule file."),
    # impact
    "imp.title": ("影响分析", "Impact of a rule change"),
    "imp.intro": ("上传一个候选规则文件：用它替换当前同名文件后，重放决策日志中的历史决策，看结果会怎样变化。",
                  "Upload a candidate rule file: the decisions in the decision log are replayed on the rules in force "
                  "with that file replaced, to show what would change."),
    "imp.replaces": ("替换哪个文件", "Replaces"),
    "imp.text": ("候选规则文件内容", "Candidate rule file"),
    "imp.submit": ("分析影响", "Preview the impact"),
    "imp.unavailable": ("决策重放尚未提供", "Replay is not available yet"),
    "imp.unavailable_text": ("影响分析需要决策日志（SPEC §10）和重放功能（§11），这两项仍在开发中。"
                             "现在可以先校验候选文件；日志上线后，本页会显示结果变化表、图表和示例决策。",
                             "Impact needs the decision log (SPEC §10) and replay (§11), which are still being built. "
                             "You can already check the candidate here; once the log exists this page shows the "
                             "transitions table, a chart and example decisions."),
    "imp.candidate_ok": ("候选文件校验通过：领域 {domain}，{rules} 条规则。",
                         "The candidate is valid: domain {domain}, {rules} rules."),
    "imp.replaced_instead": ("按候选文件自己的领域，将替换 {file}，而不是所选的 {chosen}。",
                             "The candidate replaces {file}, the file of its domain (not {chosen}, as selected)."),
    "imp.replay_problems": ("候选文件无法与当前其他规则文件一起加载，未重放任何决策：",
                            "The candidate does not load with the other files in force; nothing was replayed:"),
    "imp.replayed": ("重放 {count} 个决策", "{count} decisions replayed"),
    "imp.unchanged": ("结果不变 {count} 个", "{count} unchanged"),
    "imp.not_replayable": ("无法重放 {count} 个", "{count} not replayable"),
    "imp.transitions": ("结果变化", "Transitions"),
    "imp.transition": ("变化", "Transition"),
    "imp.count": ("数量", "Count"),
    "imp.share": ("占比", "Share"),
    "imp.chart": ("结果变化图", "Transitions chart"),
    "imp.reasons_added": ("新增原因", "Reasons added"),
    "imp.reasons_removed": ("消失原因", "Reasons removed"),
    "imp.rules": ("规则生效次数", "Rule firings"),
    "imp.before": ("之前", "Before"),
    "imp.after": ("之后", "After"),
    "imp.values_changed": ("计算值变化", "Values changed"),
    "imp.examples": ("示例决策", "Example decisions"),
    "imp.why": ("原因", "Why"),
    "imp.no_changes": ("没有决策结果发生变化。", "No decision changed its outcome."),
    # log
    "log.title": ("决策记录", "Decisions"),
    "log.records": ("已提交的决策记录", "Committed decision records"),
    "log.records_intro": ("以 commit 提交的决策会留下记录（如打款单）。",
                          "Every committed decision leaves a record (e.g. a payout)."),
    "log.filter": ("筛选", "Filter"),
    "log.decision": ("决策", "Decision"),
    "log.any": ("全部", "any"),
    "log.from": ("起始时刻", "From"),
    "log.to": ("截止时刻（不含）", "To (exclusive)"),
    "log.outcome": ("结果", "Outcome"),
    "log.id": ("决策编号 / 打款单号", "Decision id"),
    "log.code": ("原因代码", "Reason code"),
    "log.apply": ("查询", "Search"),
    "log.reset": ("清除", "Clear"),
    "log.csv": ("导出 CSV", "Export CSV"),
    "log.none": ("没有符合条件的记录。", "No records match."),
    "log.shown": ("显示前 {count} 条（按时间先后）。", "Showing the first {count} (oldest first)."),
    "log.when": ("判定时刻（服务器）", "Decided at (server)"),
    "log.now": ("决策的 now", "The decision's now"),
    "log.order": ("订单号", "Order"),
    "log.customer": ("客户账号", "Customer"),
    "log.amount": ("金额", "Amount"),
    "log.reason": ("打款原因", "Reason"),
    "log.codes": ("原因代码", "Codes"),
    "log.committed": ("已计数", "Counted"),
    "log.store_unavailable": ("记录库暂时不可用：{error}", "The record store is unavailable: {error}"),
    "log.dlog": ("决策日志", "Decision log"),
    "log.dlog_unavailable": ("决策日志尚未提供", "The decision log is not available yet"),
    "log.dlog_unavailable_text": ("决策日志（SPEC §10）会记录每一次决策（包括未提交的试算与批量决策），"
                                  "并能解释任一历史决策。它仍在开发中；目前只能查看上面的已提交记录。",
                                  "The decision log (SPEC §10) keeps every decision the service makes, committed or "
                                  "not, and can explain any of them. It is still being built; for now only the "
                                  "committed records above can be searched."),
    "log.source": ("来源", "Source"),
    "log.duration": ("耗时", "Duration"),
    "log.detail": ("决策详情", "Decision"),
    "log.not_found": ("没有编号为 {id} 的决策。", "No decision has the id {id}."),
    "log.explain": ("决策解释", "Explanation"),
    "log.explain_unavailable": ("解释需要决策日志，尚未提供；下面是提交时保存的结果。",
                                "An explanation needs the decision log, which is not available yet; below is the "
                                "result stored with the record."),
    "log.reproduced": ("已复现：重放结果与记录一致。", "Reproduced: the replay matches the logged decision."),
    "log.not_reproduced": ("未能复现：", "Not reproduced:"),
    "log.logged": ("记录的结果", "Logged"),
    "log.replayed": ("重放的结果", "Replayed"),
    "log.back": ("返回决策记录", "Back to decisions"),
    "log.masked": ("敏感信息已脱敏（hmac:…）：用审计令牌或管理员令牌登录可查看原文。",
                   "Sensitive facts are masked (hmac:…): sign in with the audit or admin token to see them."),
    "log.invalid_filter": ("筛选条件有误：", "The filters are not valid:"),
    # calendar
    "cal.title": ("{year} 年工作日历", "Working days in {year}"),
    "cal.intro": ("工作日、法定节假日与调休上班日（上海时区）。返款等待期按此计算。",
                  "Working days, public holidays and make-up working days (Asia/Shanghai). Rebate waits count these."),
    "cal.official": ("官方数据（rules/calendars/）", "Official data (rules/calendars/)"),
    "cal.estimated": ("估算年份", "Estimated year"),
    "cal.estimated_text": ("{year} 年不在官方数据中：节假日与调休按规则估算，调休上班日未知，"
                           "使用该年的决策会带 CALENDAR_ESTIMATED 提醒。",
                           "{year} is not in the official data: days off are estimated, make-up working days are "
                           "unknown, and decisions that count these days carry the CALENDAR_ESTIMATED warning."),
    "cal.prev": ("上一年", "Previous year"),
    "cal.next": ("下一年", "Next year"),
    "cal.workday": ("工作日", "working day"),
    "cal.weekend": ("周末", "weekend"),
    "cal.holiday": ("节假日", "holiday"),
    "cal.makeup": ("调休上班", "make-up working day"),
    "cal.dayoff": ("休息日（估算）", "day off (estimated)"),
    "cal.legend": ("图例", "Legend"),
    "cal.holidays": ("节假日", "Holidays"),
    "cal.makeups": ("调休上班日", "Make-up working days"),
    "cal.working_days": ("全年 {count} 个工作日", "{count} working days in the year"),
    "cal.weekdays": ("一 二 三 四 五 六 日", "Mon Tue Wed Thu Fri Sat Sun"),
    "cal.month": ("{month} 月", "{month_name}"),
    "cal.years": ("官方数据覆盖：{years}", "Official data covers: {years}"),
    "cal.go": ("查看", "Show"),
    "cal.days": ("共 {count} 天", "{count} days"),
    "cal.year": ("年份", "Year"),
    # errors
    "err.title": ("出错了", "Something went wrong"),
    "err.400": ("请求无效", "Bad request"),
    "err.403": ("需要管理员权限", "Admin only"),
    "err.403_reader": ("查看决策记录需要审计令牌（或 QA、管理员令牌）",
                       "Reading decisions needs the audit token (or the QA or admin token)"),
    "err.throttled": ("令牌错误次数过多，请稍后再试", "Too many wrong tokens: try again later"),
    "err.retry_after": ("{seconds} 秒后可以重试。", "Try again in {seconds} s."),
    "err.404": ("页面不存在", "Not found"),
    "err.413": ("内容太大（上限 1 MiB）", "Too large (the limit is 1 MiB)"),
    "err.limit": ("工作量超出上限，已停止", "Past the limit: the work was stopped"),
    "err.429": ("另一项运行尚未结束，请稍后重试", "Another run is in progress: try again shortly"),
    "err.500": ("服务器内部错误，已记录日志。", "Unexpected server error; it has been logged."),
    "err.csrf": ("表单已过期或缺少安全令牌，请刷新页面后重试。",
                 "The form expired or lacks its security token: reload the page and try again."),
    "err.home": ("返回首页", "Back to the console"),
    "err.unknown_domain": ("没有名为 {name} 的规则领域。", "There is no rule domain named {name}."),
    "err.unknown_decision": ("没有名为 {name} 的决策。", "There is no decision named {name}."),
    # drafts, review, publish, roll back (SPEC §12.1)
    "chg.drafts_title": ("规则变更：草稿", "Rule changes: drafts"),
    "chg.drafts_intro": ("先建草稿：系统会检查问题、列出改了什么、用已记录的决策回放影响、跑一遍测试场景并给出证明；"
                         "确认后填写原因发布上线，随时可在版本记录里回滚。",
                         "Start with a draft: it is checked, diffed, replayed on logged decisions, run against the "
                         "shipped scenarios and proved; publish it with a reason once it reads right, and roll back "
                         "from the versions page at any time."),
    "chg.by_form": ("改一个值（最常见）", "Change one value (the common change)"),
    "chg.by_form_intro": ("限额、时段、等待天数……选一个领域，改其中一个常量或表格单元格。",
                          "A limit, a window, a wait: pick a domain and change one constant or table cell."),
    "chg.edit_values_of": ("修改 {domain} 的值", "Change a value of {domain}"),
    "chg.edit_intro": ("每一行是当前生效规则里的一个值。填写新值并点“建草稿”：值的类型不对会直接在这一格里提示，不会建草稿。",
                       "Each row is a value of the rules in force. Enter a new value and press “Make draft”: a value of "
                       "the wrong type is refused in its field and nothing is drafted."),
    "chg.value_name": ("名称", "Name"),
    "chg.value_type": ("类型", "Type"),
    "chg.value_now": ("当前值", "Now"),
    "chg.value_new": ("新值", "New value"),
    "chg.by_text": ("上传或粘贴整个规则文件", "Upload or paste a whole rule file"),
    "chg.make_draft": ("建草稿", "Make draft"),
    "chg.list": ("草稿列表", "Drafts"),
    "chg.no_drafts": ("还没有草稿。", "No drafts yet."),
    "chg.draft": ("草稿", "Draft"),
    "chg.file": ("文件", "File"),
    "chg.author": ("作者", "Author"),
    "chg.created": ("创建时间", "Made at"),
    "chg.status": ("状态", "Status"),
    "chg.status.open": ("待发布", "open"),
    "chg.status.published": ("已发布", "published"),
    "chg.base": ("基于版本", "Made from version"),
    "chg.approvals": ("已批准", "Approved by"),
    "chg.review_title": ("审阅草稿：{file}", "Review draft: {file}"),
    "chg.no_problems": ("没有发现问题", "No problems found"),
    "chg.diff": ("改了什么", "What changes"),
    "chg.no_diff": ("规则含义没有变化（可能只改了注释或排版）。", "No policy change (comments or layout only)."),
    "chg.what": ("改动", "Change"),
    "chg.before": ("之前", "Before"),
    "chg.after": ("之后", "After"),
    "chg.read_by": ("用到它的规则：{rules}", "Read by: {rules}"),
    "chg.impact": ("对已记录决策的影响", "Impact on logged decisions"),
    "chg.cases": ("结果会变的测试场景", "Shipped scenario cases whose result changes"),
    "chg.cases_summary": ("在草稿上：{passed} 个通过，{failed} 个失败；{changed} 个用例的结果与现在不同。",
                          "On the draft: {passed} passed, {failed} failed; {changed} cases answer differently from now."),
    "chg.case": ("用例", "Case"),
    "chg.case_fails": ("与用例的期望不符", "fails its expectation"),
    "chg.stale": ("这个草稿建立之后，生效的文件已经变了：请从当前文件重新建草稿。",
                  "The live file changed since this draft was made: make the draft again from the live file."),
    "chg.publish": ("发布", "Publish"),
    "chg.needs_approval": ("需要另一位管理员（不是作者）先批准，才能发布。",
                           "Another admin than the author must approve before it is published."),
    "chg.approve": ("批准", "Approve"),
    "chg.approved": ("已批准。", "Approved."),
    "chg.reason": ("原因（会记录在版本里）", "Reason (kept with the version)"),
    "chg.publish_button": ("发布上线", "Publish"),
    "chg.reason_needed": ("请填写原因（1 到 2000 个字）。", "Say why, in 1 to 2000 characters."),
    "chg.invalid": ("发布后的规则有问题，未发布：{problems}",
                    "The rules this makes have problems; nothing was published: {problems}"),
    "chg.published": ("已发布 {domain} 的新版本 {version}…，已生效。", "Published {domain} {version}…; it is live."),
    "chg.rolled_back": ("已回滚 {domain} 到版本 {version}…，已生效。", "Rolled {domain} back to {version}…; it is live."),
    "chg.refused.DRAFT_STALE": ("生效的文件在草稿建立后已改变：请重新建草稿。",
                                "The live file changed since the draft was made: make it again."),
    "chg.refused.DRAFT_CLOSED": ("这个草稿已经发布过了。", "This draft was published already."),
    "chg.refused.APPROVAL_REQUIRED": ("还需要另一位管理员批准。", "Another admin must approve it first."),
    "chg.refused.OWN_DRAFT": ("不能批准自己的草稿：请另一位管理员批准。", "You made this draft: another admin approves it."),
    "chg.refused.ALREADY_LIVE": ("这个版本就是当前生效的版本。", "That version is the live one."),
    "chg.refused.NOT_FOUND": ("没有保存这个版本。", "That version is not kept."),
    "chg.versions_title": ("版本记录", "Versions"),
    "chg.versions_intro": ("每次发布、回滚和在规则目录里的改动：谁、什么时候、为什么。任何保存的版本都可以回滚。",
                           "Every publication, rollback and change seen in the rules directory: who, when and why. "
                           "Any kept version can be put live again."),
    "chg.version": ("版本", "Version"),
    "chg.kind": ("方式", "How"),
    "chg.who": ("发布人", "Who"),
    "chg.when": ("时间", "When"),
    "chg.why": ("原因", "Why"),
    "chg.live": ("生效中", "live"),
    # holidays as the calendar data names them (chinese-calendar's English names)
    "holiday.New Year's Day": ("元旦", "New Year's Day"),
    "holiday.Spring Festival": ("春节", "Spring Festival"),
    "holiday.Tomb-sweeping Day": ("清明节", "Tomb-sweeping Day"),
    "holiday.Labour Day": ("劳动节", "Labour Day"),
    "holiday.Dragon Boat Festival": ("端午节", "Dragon Boat Festival"),
    "holiday.Mid-autumn Festival": ("中秋节", "Mid-autumn Festival"),
    "holiday.National Day": ("国庆节", "National Day"),
    "holiday.Anti-Fascist 70th Day": ("抗战胜利70周年纪念日", "Anti-Fascist 70th Day"),
    "chg.directory": ("规则目录", "rules directory"),
    "chg.why.seed": ("服务首次启动时规则目录里的文件", "the rules directory's file at the first start"),
    "chg.why.file": ("在规则目录里直接修改", "changed in the rules directory"),
    "chg.times_in_shanghai": ("时间均为北京时间。", "Times are Shanghai time."),
    "chg.rollback": ("回滚到此版本", "Roll back to this"),
    "chg.kind.seed": ("初始（规则目录）", "first start (rules directory)"),
    "chg.kind.publish": ("发布", "published"),
    "chg.kind.rollback": ("回滚", "rolled back"),
    "chg.kind.file": ("规则目录中修改", "changed in the rules directory"),
    "chg.kind.constant": ("常量", "constant"),
    "chg.kind.constant note": ("常量说明", "constant note"),
    "chg.kind.constant added": ("新增常量", "constant added"),
    "chg.kind.constant removed": ("删除常量", "constant removed"),
    "chg.kind.cell": ("表格单元格", "table cell"),
    "chg.kind.domain added": ("新增领域（新文件）", "domain added (a new file)"),
    "chg.kind.domain removed": ("删除领域", "domain removed"),
    "chg.bad_name": ("“{name}”不是规则文件名：请用 名称.yaml，例如 recovery.yaml。",
                     "“{name}” is not a rule file name: use NAME.yaml, e.g. recovery.yaml."),
    "chg.kind.rule added": ("新增规则", "rule added"),
    "chg.kind.rule removed": ("删除规则", "rule removed"),
    "chg.kind.rule when": ("规则条件", "rule condition"),
    "chg.kind.rule effect": ("规则效果", "rule effect"),
    "chg.kind.rule code": ("规则代码", "rule code"),
    "chg.kind.message zh": ("中文提示", "message (zh)"),
    "chg.kind.message en": ("英文提示", "message (en)"),
}

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
    zh, en = TEXT[key]
    text = zh if current_language() == "zh" else en
    return text.format(**values) if values else text


def holiday_name(name: str) -> str:
    """A holiday's name in the current language (the calendar files hold chinese-calendar's English names)."""
    key = f"holiday.{name}"
    return t(key) if key in TEXT else name


def type_label(kind: Type) -> str:
    """A declared type as people read it: 金额（元）, 枚举 order_state, 列表 [文本]."""
    if kind.kind == "list" and kind.item is not None:
        return f"{t('type.list')} [{type_label(kind.item)}]"
    if kind.kind == "enum":
        return f"{t('type.enum')} {kind.enum}"
    return t(f"type.{kind.kind}") if f"type.{kind.kind}" in TEXT else kind.kind


def field_message(message: str) -> str:
    """A fact-validation message in the current language (the engine speaks English)."""
    if current_language() == "en":
        return message
    for pattern, zh in _FIELD_MESSAGES_ZH:
        if pattern.match(message):
            return pattern.sub(zh, message)
    return message
