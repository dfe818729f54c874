#!/usr/bin/env python3
"""`tubcar models` as a script, for those who type the old path: see `tubcar models --help`."""

import runpy
import sys

sys.path.pop(0)  # this folder: its models.py would shadow the package of the same name
sys.argv[1:1] = ["models"]
runpy.run_module("tubcar", run_name="__main__")
