"""``python -m engine.decisionlog URL``: the decision log's writer process (engine/decisionlog/process.py)."""

import logging
import sys

from .process import main

logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
main(sys.argv[1])
