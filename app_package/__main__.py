"""``python app_package -i IN -o OUT -m MODELS``: run the IMC app; the exit code is 1 when anything failed."""

import logging
import sys

from app import IMCApp

if __name__ == "__main__":
    logging.info(f"Begin {__name__}")
    app = IMCApp()
    app.run()
    logging.info(f"End {__name__}")
    sys.exit(app.exit_code)
