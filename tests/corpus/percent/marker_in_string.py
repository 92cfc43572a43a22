# %% Strings that contain markers
doc = """
# %% this is not a cell
text
"""
other = '''
    # %% nor this one
'''

# %% Single-line strings
a = "# %% inside a string"
b = '# %%'  # a comment after a string with "quotes"
c = "escaped \" quote"
d = """one-line triple""" + '''another'''

# %% A cell after the strings
print(len(doc), len(other), a, b, c, d)
