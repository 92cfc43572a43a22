
# %% a leading blank line makes an empty first cell
x = 1
