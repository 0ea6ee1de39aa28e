"""RFC 4456 route reflection.

``rules`` is the export step of the update groups (which iBGP routes go to clients and
non-clients, ORIGINATOR_ID and CLUSTER_LIST); ``loop_check`` is the receiving side (routes that
come back are ignored, with a rate-limited log).
"""
