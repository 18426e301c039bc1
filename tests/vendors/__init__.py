"""Fake vendor HTTP servers that answer in each vendor's documented wire format, for real SDK clients."""
