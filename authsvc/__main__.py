"""``python -m authsvc`` is the ``authsvc`` command."""

import sys

from authsvc.runtime.command import main

sys.exit(main())
