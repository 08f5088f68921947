"""``python -m ragnb.evaluate PATH``: retrieval metrics of a BEIR folder (see retrieval.main)."""

import sys

from ragnb.evaluate.retrieval import main

sys.exit(main())
