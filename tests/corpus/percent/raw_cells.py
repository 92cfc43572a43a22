# %% [raw]
# raw text: never executed
# %% Raw by option cell_type="raw"
# also raw
# %% [raw] [markdown]
# [markdown] is looked for first: this cell is markdown, titled "[raw]"
# %%
x = 1
