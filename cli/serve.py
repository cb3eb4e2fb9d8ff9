"""``rulesvc serve``: the Flask app under gunicorn."""

from __future__ import annotations

from typing import Any

from gunicorn.app.base import BaseApplication

from api import create_app


class RulesvcServer(BaseApplication):
    """gunicorn, configured from our command-line options instead of its own."""

    def __init__(self, rules_dir: str, options: dict[str, Any], store_url: str, records_url: str | None):
        self.rules_dir = rules_dir
        self.options = options
        self.store_url = store_url
        self.records_url = records_url
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self):
        return create_app(self.rules_dir, store_url=self.store_url, records_url=self.records_url)


def serve(rules_dir: str, host: str, port: int, workers: int, store_url: str, records_url: str | None) -> None:
    RulesvcServer(rules_dir, {
        "bind": f"{host}:{port}",
        "workers": workers,
        # Compile the rules once in the master: a broken rule file stops the start with its problems.
        "preload_app": True,
        "accesslog": "-",
    }, store_url, records_url).run()
