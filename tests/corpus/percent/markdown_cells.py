# %% [markdown]
# # Title
#
# Some *prose*, with `code`.
#no space after the hash
# %% [md] Section [md] is markdown too
# - item
#   - nested item
# %% Intro [markdown] tags=["notes"]
# The cell type may follow the title.

# %% [markdown]
"""
Markdown written as a docstring is unwrapped.
"""

# %% [markdown]
r'''A raw-string docstring, on one line.'''

# %% [markdown]
an uncommented line stays as it is
  # an indented comment stays commented

# %%
print("code")
