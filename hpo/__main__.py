from __future__ import annotations

import sys

from hpo.cli import main

sys.exit(main())
