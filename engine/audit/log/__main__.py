"""``python -m engine.audit.log URL``: the decision log's writer process (engine/audit/log/process.py)."""

import logging
import sys

from engine.audit.log.process import main

logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
main(sys.argv[1])
