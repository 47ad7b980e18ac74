"""Serve the paper-trading dashboard: a read-only FastAPI app over the state file, with uvicorn.

    python scripts/dashboard.py state=outputs/paper/<run>/state.db
    python scripts/dashboard.py state=... dashboard.port=9000 dashboard.refresh_s=10
    KRAKENRL_DASHBOARD_TOKEN=<16+ chars> python scripts/dashboard.py dashboard.host=0.0.0.0 state=...

Open http://127.0.0.1:8765/ (with a token: http://HOST:PORT/?token=<token> once; the page keeps it
in an HttpOnly cookie). The API is documented at /docs (OpenAPI at /openapi.json), Prometheus
metrics are at /metrics. Binding beyond loopback without a token is refused (exit 2). The
dashboard never writes to the state file; reactivating the kill switch stays in the CLI.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from envs.errors import ConfigError
from krakenrl.cli import hydra_main


def settings(cfg: DictConfig) -> dict[str, Any]:
    """The dashboard settings, the token taken from the config or ``KRAKENRL_DASHBOARD_TOKEN``."""
    from paper.dashboard import TOKEN_ENV, BindError, check_bind

    d = cfg.dashboard
    token = d.token if d.token else os.environ.get(TOKEN_ENV) or None
    host, port = str(d.host), int(d.port)
    if not 0 < port < 65536:
        raise ConfigError(f"dashboard.port: expected 1..65535, got {port}")
    try:
        check_bind(host, None if token is None else str(token))
    except BindError as exc:
        raise ConfigError(str(exc)) from None
    return {"host": host, "port": port, "state": Path(str(d.state)), "refresh_s": float(d.refresh_s),
            "stale_after_s": float(d.stale_after_s), "token": token, "log_level": str(d.log_level)}


def serve(cfg: DictConfig, out_dir: Path) -> None:
    """Build the app and serve it until interrupted."""
    import uvicorn

    from paper.dashboard import create_app

    s = settings(cfg)
    app = create_app(s["state"], s["token"], host=s["host"], refresh_s=s["refresh_s"],
                     stale_after_s=s["stale_after_s"])
    print(f"dashboard: http://{s['host']}:{s['port']}/ over {s['state']} (read-only)", flush=True)
    uvicorn.run(app, host=s["host"], port=s["port"], log_level=s["log_level"], server_header=False,
                access_log=False)


main = hydra_main(serve, "dashboard")


if __name__ == "__main__":
    main()
