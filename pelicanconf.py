"""Pelican settings for the public site (第7条). The site issue fills in the plugin and theme."""

SITENAME = "川崎市電子メール配信サービス"
DEFAULT_LANG = "ja"
TIMEZONE = "Asia/Tokyo"
PATH = "content"
OUTPUT_PATH = "output"
