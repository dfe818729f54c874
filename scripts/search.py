#!/usr/bin/env python3
"""`tubcar search` as a script, for those who type the old path: see `tubcar search --help`."""

import runpy
import sys

sys.path.pop(0)  # this folder: its search.py would shadow the package of the same name
sys.argv[1:1] = ["search"]
runpy.run_module("tubcar", run_name="__main__")
