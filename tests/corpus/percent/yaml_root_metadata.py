# ---
# title: Root-level keys become a raw cell
# author: somebody
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---
# %%
print("no blank line after the header")
