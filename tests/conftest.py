"""Shared pytest configuration: the hypothesis profile of the test suite.

The default profile ``iapo`` has no per-example deadline (the first call of an ``@njit`` function
compiles, which would trip hypothesis's 200 ms deadline), a moderate number of examples so the
suite runs in seconds, and derandomized example generation so that every run of the suite checks
the same examples. ``HYPOTHESIS_PROFILE=explore`` draws fresh, more numerous examples.
"""

import os

from hypothesis import settings

settings.register_profile("iapo", deadline=None, max_examples=40, derandomize=True)
settings.register_profile("explore", deadline=None, max_examples=500)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "iapo"))
