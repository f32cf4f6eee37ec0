"""``python -m neuro_sae.corpora --out DIR --hours H``: build the offline corpus."""

import sys

from ._cli import main

sys.exit(main())
