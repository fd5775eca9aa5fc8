"""``python -m ecom_devtools`` is ``ecom-infra``."""

import sys

from ecom_devtools.local.cli import main

sys.exit(main())
