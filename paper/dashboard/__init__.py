"""The paper-trading monitoring dashboard: a read-only FastAPI app over the state file.

``create_app(state_path, token=None, ...)`` builds it (docs/dashboard.md); ``scripts/dashboard.py``
serves it with uvicorn. Importing `paper` alone never loads FastAPI.
"""

from paper.dashboard.app import create_app
from paper.dashboard.security import TOKEN_ENV, BindError, check_bind

__all__ = ["TOKEN_ENV", "BindError", "check_bind", "create_app"]
