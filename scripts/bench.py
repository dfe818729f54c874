#!/usr/bin/env python3
"""`tubcar bench` as a script, for those who type the old path: see `tubcar bench --help`."""

import runpy
import sys

sys.path.pop(0)  # this folder: its bench.py would shadow the package of the same name
sys.argv[1:1] = ["bench"]
runpy.run_module("tubcar", run_name="__main__")
