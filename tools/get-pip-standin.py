"""Stand-in for the get-pip.py bootstrap script that ansible-test downloads.

ansible-test fetches get-pip.py from a host that only the package registries
of this project's CI can replace, and reads it from a cache path when present.
This stand-in does the same job with the standard library: ensurepip gives the
new virtualenv a pip, which then installs the exact pip version (and any other
package) ansible-test asked for, from the configured package index.
"""

import subprocess
import sys

GET_PIP_ONLY = {"--no-setuptools", "--no-wheel"}

args = [arg for arg in sys.argv[1:] if arg not in GET_PIP_ONLY]
subprocess.check_call([sys.executable, "-m", "ensurepip", "--default-pip"])
subprocess.check_call([sys.executable, "-m", "pip", "install", *args])
