"""The HTTP API and the pages (contract §3, §6). What other packages may use is named here;
the entry points build the app with `api.app.create_app`."""

from api.tokens_admin import create as create_token

__all__ = ["create_token"]
