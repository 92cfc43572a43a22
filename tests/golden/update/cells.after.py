# %% [markdown]
# Cells whose expected output drifted; `sandrun run --update` rewrites only those.

# %% Greet
# A comment before the directives stays where it is.
print("hello")
print()
print("world")
# expect stdout:
# hello
#
# world

# %% Value
6 * 7  # a trailing expression
# expect value: 42
# expect match: exact

# %% Nothing was expected yet
print("now something")
# expect stdout:
# now something
# expect match: exact

# %% Ellipsis still matches
print("id=12345 ok")
# expect stdout:
# id=... ok

# %% Stderr
import sys

print("warn", file=sys.stderr)
# expect stderr:
# warn

# %% Quiet now
x = 1
# expect stdout:

# %% Expected error tags=["raises-exception"]
print("before")
1 / 0
# expect stdout:
# before
# expect error: ZeroDivisionError

# %% Skipped tags=["skip"]
print("never")
# expect stdout:
# wrong

# %% Unexpected error
print("partial")
int("x")
# expect stdout:
# full

# %% Indented output, last line of the file without a newline
print("  a\n\tb")
# expect stdout:
#   a
# 	b