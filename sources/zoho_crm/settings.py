"""Zoho CRM constants: data centers, paging limits, retention windows."""

from datetime import timedelta

# data center -> (accounts server, API domain)
DATA_CENTERS = {
    "us": ("https://accounts.zoho.com", "https://www.zohoapis.com"),
    "eu": ("https://accounts.zoho.eu", "https://www.zohoapis.eu"),
    "in": ("https://accounts.zoho.in", "https://www.zohoapis.in"),
    "au": ("https://accounts.zoho.com.au", "https://www.zohoapis.com.au"),
    "jp": ("https://accounts.zoho.jp", "https://www.zohoapis.jp"),
    "ca": ("https://accounts.zohocloud.ca", "https://www.zohoapis.ca"),
    "cn": ("https://accounts.zoho.com.cn", "https://www.zohoapis.com.cn"),
    "sa": ("https://accounts.zoho.sa", "https://www.zohoapis.sa"),
}
DEFAULT_API_VERSION = "v8"
MAX_PER_PAGE = 200  # Zoho's maximum, and what a run asks for
MAX_DISCRETE_RECORDS = 2_000  # `page` reaches this far; beyond it only `page_token` does
MAX_FIELDS_PER_CALL = 50  # `fields` takes at most 50 API names

# How long Zoho keeps returning an entry after its deleted_time.
RETENTION = {"recycle": timedelta(days=60), "permanent": timedelta(days=120)}

# Refresh the access token this long before Zoho says it expires.
TOKEN_EXPIRY_MARGIN = timedelta(seconds=60)
