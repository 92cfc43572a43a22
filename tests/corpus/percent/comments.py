# %% Comments are code
# a plain comment
#    an indented comment text
x = 1  # trailing comment with # %% in it
# 100%% sure this is no marker
# %%-- not a marker either: no space after the percent signs
    # indented comment
y = 2
