"""``python -m peer`` runs the ``rumor`` command."""

import sys

from peer.cli import main

sys.exit(main())
