# %% A function cut in two
def f():
    x = 1
    # %% an indented marker still starts a cell
    return x


# %% Back at the top level
for i in range(2):
        #%%
    print(i)
