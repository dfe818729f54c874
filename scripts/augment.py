#!/usr/bin/env python3
"""`tubcar augment` as a script, for those who type the old path: see `tubcar augment --help`."""

import runpy
import sys

sys.path.pop(0)  # this folder: its augment.py would shadow the package of the same name
sys.argv[1:1] = ["augment"]
runpy.run_module("tubcar", run_name="__main__")
