"""RFC 4456 route reflection as an export step (a later issue)."""
