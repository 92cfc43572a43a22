# %% Load data
import math

values = [1, 2, 3]

# %% Divide by zero tags=["raises-exception"]
1 / 0

# %% Area tags=["slow", "geometry"] owner="docs"
area = math.pi * 2**2
print(round(area, 2))
