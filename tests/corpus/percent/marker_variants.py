#%%
a = 1
#    %%   spaced title
b = 2
# %%% Spyder sub-cell
c = 3
# %%%
d = "a bare '# %%%' is not a marker: this line stays in the cell above"
# %%	tab before the title
e = 4
# In[5]:
f = 5
# <codecell>
g = 6
## %% two hashes is just a comment
h = 7
# %% 
i = 8
