# `uos` is `os`: MicroPython 1.21+ still resolves a u-prefixed import to the built-in module without the u
# (https://docs.micropython.org/en/v1.27.0/library/index.html#extending-built-in-libraries-from-python,
# https://github.com/orgs/micropython/discussions/12078). Prefer `import os`.
from os import *
