"""Bounces coming back: classify each report per recipient (classify/, in Sisimai's shape),
record and score it against the subscriber, alarm on refusals about us, and the digest
for each channel's 情報管理者."""
