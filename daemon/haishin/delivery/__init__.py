"""Delivery of approved posts: render once, personalize per recipient, bounces."""
