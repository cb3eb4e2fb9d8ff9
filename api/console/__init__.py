"""The policy console (SPEC §12): server-rendered pages under ``/console/`` for policy staff and QA.

Pages translate to and from the engine and nothing more: rules are read from the active rulebook,
decisions made by ``CompiledDecision.evaluate``, scenarios run by ``engine.tester``, rule files
checked by ``load_rule_file``, records read from the store; :mod:`.audit` is where the decision log
and impact replay plug in. Templates and the stylesheet live beside this package and are served by
the app itself.
"""

from __future__ import annotations

from pathlib import Path

from flask import Flask

from . import changes, i18n, log, pages, runs, tryout  # noqa: F401  (they add their routes to the blueprint)
from .blueprint import EXTENSION, PREFIX, blueprint
from .security import configure_sessions
from .suites import Suites


def register_console(app: Flask, examples_dir: Path | None = None, scenarios_dir: Path | None = None) -> None:
    """Add the console to ``app``; examples and scenario files default to the folders beside the rules."""
    state = app.extensions["rulesvc"]
    app.extensions[EXTENSION] = Suites(examples_dir or state.rules_dir.resolve().parent / "examples",
                                       scenarios_dir or state.scenarios_dir)
    configure_sessions(app, PREFIX)
    i18n.init_babel(app)
    app.register_blueprint(blueprint)


__all__ = ["register_console"]
