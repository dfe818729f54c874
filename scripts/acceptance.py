#!/usr/bin/env python3
"""`tubcar acceptance` as a script, for those who type the old path: see `tubcar acceptance --help`."""

import runpy
import sys

sys.path.pop(0)  # this folder: its acceptance.py would shadow the package of the same name
sys.argv[1:1] = ["acceptance"]
runpy.run_module("tubcar", run_name="__main__")
