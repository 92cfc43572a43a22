# %% [markdown]
# # One interpreter, many cells
#
# Every cell runs in the same Python interpreter, so what one cell defines the next one can use.
# This file is a plain Python script, a Jupytext/VS Code percent notebook, and a sandrun recipe.

# %% Define some data
words = ["sandbox", "recipe", "transcript"]
counts = {word: len(word) for word in words}

# %% Use it in a later cell
for word, n in counts.items():
    print(f"{word:>10}: {n}")

# %% The value of a trailing expression is recorded, like in a REPL
sum(counts.values())

# %% [markdown]
# A cell tagged `raises-exception` passes only if it raises.

# %% A lookup that fails on purpose tags=["raises-exception"]
counts["missing"]

# %% State survived the exception
print("still here:", sorted(counts))
