"""The bad-input table of tests/badinput, run against this scenario's converged host.

The table lives in tests/badinput/test_badinput.py; importing its tests here
runs them in `molecule verify`, before the faults (the host is then as
converged, and the table proves it stays so).
"""

import os
import sys

from helpers import APP, HOST, PROJECT

os.environ.setdefault("WEBSTACK_BADINPUT_HOST", HOST)
os.environ.setdefault("WEBSTACK_BADINPUT_APP", APP)
sys.path.insert(0, os.path.join(PROJECT, "tests", "badinput"))

from test_badinput import (  # noqa: E402,F401  pylint: disable=wrong-import-position,unused-import
    host_before, test_bad_input_fails_naming_the_variable, test_real_run_stops_in_validation_before_any_change,
    test_host_unchanged_by_the_whole_table)
