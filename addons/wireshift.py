"""mitmproxy entry point: ``mitmdump -s addons/wireshift.py --set wireshift_config=PATH``.

mitmproxy's script loader puts this file's directory on ``sys.path``, not the repo root, so the
repo root is added here too: the packages work whether or not the project is pip-installed.
"""

import sys
from pathlib import Path

_ROOT = str(Path(__file__).resolve().parent.parent)
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from addons.llm_flows import WireShift  # noqa: E402

addons = [WireShift()]
