# %% [markdown]
# An opening fence counts if a closing fence comes anywhere later in the file,
# even in another cell, so this markdown cell swallows the code below:
# ```python
# %% Swallowed
x = 1
# %% Also swallowed
# ```
# %% The first marker after the closing fence
y = 2
