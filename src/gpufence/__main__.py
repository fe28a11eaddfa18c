"""`python -m gpufence`."""

import sys

from gpufence.cli import main

sys.exit(main())
