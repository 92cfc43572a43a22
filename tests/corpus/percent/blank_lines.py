x = 1

# %% followed by two blank lines (both cut)
y = 2


# %% followed by three blank lines (two are kept)
z = 3



# %% followed by no blank line
w = 4
# %% followed by a whitespace-only line (kept as content)
v = 5
  
# %% at the end of the file, followed by three blank lines
u = 6



