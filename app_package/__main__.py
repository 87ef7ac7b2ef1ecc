"""``python app_package -i IN -o OUT -m MODELS``: run the IMC app; the exit code is 1 when anything failed."""

import logging
import sys

from app import IMCApp

logger = logging.getLogger("app_package")

if __name__ == "__main__":
    logger.info("Begin %s", __name__)
    app = IMCApp()
    app.run()
    logger.info("End %s: exit code %d", __name__, app.exit_code)
    sys.exit(app.exit_code)
