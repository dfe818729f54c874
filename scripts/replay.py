#!/usr/bin/env python3
"""`tubcar replay` as a script, for those who type the old path: see `tubcar replay --help`."""

import runpy
import sys

sys.path.pop(0)  # this folder: its replay.py would shadow the package of the same name
sys.argv[1:1] = ["replay"]
runpy.run_module("tubcar", run_name="__main__")
