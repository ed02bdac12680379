"""``python -m authsvc`` is the ``authsvc`` command."""

import sys

from authsvc.runtime.cli import main

sys.exit(main())
