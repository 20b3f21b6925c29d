"""The use cases of uglspot: the public Python API.

One module per workflow, each a function with typed arguments that returns a
result object (what was written, the numbers, the failures) and prints
nothing; the ``uglspot`` commands parse arguments, call one of these and
print what it returns. Heavy libraries (torch, av) are imported inside the
functions, so importing this package is instant.
"""
