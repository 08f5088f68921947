"""``python -m ragnb.evaluate PATH``: retrieval metrics of a BEIR folder (see retrieval.main)."""

import sys

from ragnb.evaluate.retrieval import main

if __name__ == "__main__":  # importing this module (doctest discovery, say) runs nothing
    sys.exit(main())
