# MicroPython 1.27 `sys`: https://docs.micropython.org/en/v1.27.0/library/sys.html (Functions, Constants)
# No exc_info(), getrecursionlimit(), getsizeof() or environment; print_exception() is MicroPython's own.
from typing import Any, NoReturn, TextIO

class _Implementation:
    name: str
    version: tuple[int, int, int, str]
    _machine: str
    _mpy: int

def exit(retval: object = 0, /) -> NoReturn: ...
def print_exception(exc: BaseException, file: Any = ..., /) -> None: ...
def atexit(func: Any, /) -> Any: ...

argv: list[str]
byteorder: str
implementation: _Implementation
maxsize: int
modules: dict[str, Any]
path: list[str]
platform: str
ps1: str
ps2: str
stderr: TextIO
stdin: TextIO
stdout: TextIO
version: str
version_info: tuple[int, int, int]
