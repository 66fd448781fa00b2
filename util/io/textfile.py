"""Reading a user's text file (config, list) as UTF-8, naming the line of a bad byte."""
from __future__ import annotations

from util.errors import UserError


def read_utf8(path: str, fix: str, error: type[UserError] = UserError) -> str:
    """The file's text (a UTF-8 byte-order mark is dropped). Bytes that are not UTF-8 (a list
    or config saved as Latin-1 or UTF-16) raise `error` naming `path:line`, the byte and `fix`,
    instead of a decoding traceback."""
    with open(path, "rb") as f:
        raw = f.read()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        raise error(f"{path}:{line}: not UTF-8 text (byte 0x{raw[e.start]:02x}): {fix}") from None
