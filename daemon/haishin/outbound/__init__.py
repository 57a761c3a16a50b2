"""Send what the queue holds: to the smarthost with retries, or into a local maildir."""
