#!/usr/bin/env python3
# -*- coding: utf-8 -*-
# The shebang and the coding line are dropped; this comment is kept.
import sys

# %%
print(sys.argv[:0])
