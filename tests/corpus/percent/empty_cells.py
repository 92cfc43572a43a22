# %%
# %%

# %%


# %%
    
# %% Only a comment
# nothing to run
# %%
x = 1
# %%
