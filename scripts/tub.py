#!/usr/bin/env python3
"""`tubcar tub` as a script, for those who type the old path: see `tubcar tub --help`."""

import runpy
import sys

sys.path.pop(0)  # this folder: its tub.py would shadow the package of the same name
sys.argv[1:1] = ["tub"]
runpy.run_module("tubcar", run_name="__main__")
