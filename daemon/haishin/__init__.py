"""haishin: the software that runs 川崎市電子メール配信サービス."""

__version__ = "0.1.0"
