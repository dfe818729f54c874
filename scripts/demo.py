#!/usr/bin/env python3
"""`tubcar demo` as a script, for those who type the old path: see `tubcar demo --help`."""

import runpy
import sys

sys.path.pop(0)  # this folder: its demo.py would shadow the package of the same name
sys.argv[1:1] = ["demo"]
runpy.run_module("tubcar", run_name="__main__")
