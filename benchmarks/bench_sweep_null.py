"""SAE-sized univariate sweep with a 1000-shift max-T null (line 2 of bench_permutation.py).

6144 sparse nonnegative features (5 % active, band-passed 1-8 Hz) x 128 channels, 15 min
at 128 Hz in 5 runs;
``--sae-features`` of them are timed and the times are extrapolated linearly to 6144
(printed as such), for the exact and the rank-truncated (``--rank-tol``) refit null.
Goal: the null in <= 10 min on 2 CPU cores.

Usage: ``python benchmarks/bench_sweep_null.py [--quick] [--sae-features 16]
[--permutations 1000] [--rank-tol 1e-4]``
"""

import sys

from bench_permutation import main

if __name__ == "__main__":
    sys.argv.append("--skip-broderick")
    main()
