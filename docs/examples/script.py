# /// script
# [tool.sandrun]
# timeout = 10
# ///

# %% [markdown]
# Totals of a small table, cell by cell.

# %% Load
rows = [("apples", 3), ("pears", 5)]

# %% Total
print(sum(n for _, n in rows))
# expect stdout:
# 8

# %% A row that is not there tags=["raises-exception"]
rows[2]
