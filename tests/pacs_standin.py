"""``monai-imc serve`` with the stand-in for the model step (tests/pacs_helpers.StandInProcessor), for the
kill loop: the same command line, settings, queue, listener and destinations; only the model is not loaded.

    python tests/pacs_standin.py -o OUT --port P --allow-calling-ae ROUTER --cstore ORTHANC@127.0.0.1:4242
"""

from __future__ import annotations

import logging
import sys

from pacs_helpers import StandInProcessor

from monai_imc.cli import build_parser
from monai_imc.pacs.command import run_serve

if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    sys.exit(run_serve(build_parser().parse_args(["serve", *sys.argv[1:]]), StandInProcessor()))
