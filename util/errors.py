"""The project's one user-error type, importable from util/ as well (it lives in model/errors.py
so that model/ depends on nothing in util/)."""
from model.errors import UserError

__all__ = ["UserError"]
