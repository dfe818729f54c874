#!/usr/bin/env python3
"""`tubcar deploy` as a script, for those who type the old path: see `tubcar deploy --help`."""

import runpy
import sys

sys.path.pop(0)  # this folder: its deploy.py would shadow the package of the same name
sys.argv[1:1] = ["deploy"]
runpy.run_module("tubcar", run_name="__main__")
