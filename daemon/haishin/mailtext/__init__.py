"""Mail text: decoding what citizens send (Japanese charsets) and the daemon's own texts."""
