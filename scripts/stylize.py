#!/usr/bin/env python3
"""`tubcar stylize` as a script, for those who type the old path: see `tubcar stylize --help`."""

import runpy
import sys

sys.path.pop(0)  # this folder: its stylize.py would shadow the package of the same name
sys.argv[1:1] = ["stylize"]
runpy.run_module("tubcar", run_name="__main__")
