# %% [markdown]
# # A plot, captured
#
# matplotlib runs with its non-interactive Agg backend inside the sandbox. Every figure a cell leaves open
# is captured as a PNG at the end of the cell (and closed), as in Jupyter; `plt.show()` captures at once.
# `--report out.md` writes the pictures beside the page (`out_files/`), `--report out.ipynb` into the
# notebook; the terminal shows `[image/png 640x480]`-style placeholders.

# %% Draw
import matplotlib.pyplot as plt

xs = list(range(10))
plt.figure(figsize=(4, 3))
plt.plot(xs, [x * x for x in xs], marker="o")
plt.title("squares")
print("drawn")
# expect stdout:
# drawn

# %% Two figures, shown one after the other
for power in (2, 3):
    plt.figure(figsize=(3, 2))
    plt.plot(xs, [x**power for x in xs])
    plt.show()
    print("power", power)
# expect stdout:
# power 2
# power 3

# %% Rich objects show themselves: display() and the trailing value use their _repr_*_ methods
class Table:
    def __init__(self, rows):
        self.rows = rows

    def _repr_html_(self):
        cells = "".join(f"<tr><td>{a}</td><td>{b}</td></tr>" for a, b in self.rows)
        return f"<table>{cells}</table>"

    def __repr__(self):
        return f"Table({len(self.rows)} rows)"


display(Table([("a", 1)]))
Table([("a", 1), ("b", 2)])
# expect value: Table(2 rows)
