# %% {"tags": ["raises-exception"]}
raise ValueError("expected")
# %% JSON title {"tags": ["json"], "n": 1}
a = 1
# %% Hidden output .hidden .class
b = 2
# %% flag tags=['single', "double"] other=None
c = 3
# %% title="From an option"
d = 4
# %% Title wins title="ignored"
e = 5
# %% x = 1
f = 6
# %% tags=[] key='value with spaces' n=3.5
g = 7
