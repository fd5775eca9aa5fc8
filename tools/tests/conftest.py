"""Make ``ecom_devtools`` importable from a source checkout where it is not installed."""

import importlib.util
import sys
from pathlib import Path

TOOLS_DIR = Path(__file__).resolve().parents[1]

if importlib.util.find_spec("ecom_devtools") is None:
    sys.path.insert(0, str(TOOLS_DIR))
