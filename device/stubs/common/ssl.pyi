# MicroPython 1.27 `ssl`: https://docs.micropython.org/en/v1.27.0/library/ssl.html
# (Functions, class SSLContext, Exceptions, Constants). No create_default_context().
from typing import Any

def wrap_socket(sock: Any, server_side: bool = False, key: bytes | None = None, cert: bytes | None = None,
                cert_reqs: int = ..., cadata: bytes | None = None, server_hostname: str | None = None,
                do_handshake: bool = True) -> Any: ...

class SSLContext:
    verify_mode: int
    def __init__(self, protocol: int, /) -> None: ...
    def load_cert_chain(self, certfile: str | bytes, keyfile: str | bytes, /) -> None: ...
    def load_verify_locations(self, cafile: str | None = None, cadata: bytes | None = None) -> None: ...
    def get_ciphers(self) -> list[str]: ...
    def set_ciphers(self, ciphers: list[str], /) -> None: ...
    def wrap_socket(self, sock: Any, *, server_side: bool = False, do_handshake_on_connect: bool = True,
                    server_hostname: str | None = None) -> Any: ...

SSLError = OSError
PROTOCOL_TLS_CLIENT: int
PROTOCOL_TLS_SERVER: int
CERT_NONE: int
CERT_OPTIONAL: int
CERT_REQUIRED: int
