# A plain script: no cell marker at all.
import json


def double(x):
    return 2 * x


print(json.dumps(double(21)))

