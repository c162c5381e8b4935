"""A local stand-in for Zoho CRM's deleted-records APIs, for the demo, tests and benchmark."""

from zoho_standin.oauth import CLIENT_ID, CLIENT_SECRET, REFRESH_TOKEN
from zoho_standin.org import Org
from zoho_standin.server import StandinServer

__all__ = ["CLIENT_ID", "CLIENT_SECRET", "REFRESH_TOKEN", "Org", "StandinServer"]
