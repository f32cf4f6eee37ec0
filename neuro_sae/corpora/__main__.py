"""``python -m neuro_sae.corpora --out DIR --hours H``: build the offline corpus."""

import sys

from ._cli import main

if __name__ == "__main__":
    sys.exit(main())
