# %% [markdown]
# A diagram whose comments look like markers:
#
# ```mermaid
# graph TD
# %% a mermaid comment, not a cell marker
#   A --> B
# ```
# %% [raw]
# ~~~~
# %% inside a raw cell's fence
# ~~~~~
# %%
# ```text
# %% Fences only count in markdown and raw cells
# ```
z = 3
# %% [markdown]
# ```python
# %% A fence that is never closed hides nothing
y = 2
