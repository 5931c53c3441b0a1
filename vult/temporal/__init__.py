"""Temporal plumbing: the client and its data converter, payload encryption, the search
attributes, the workflow sandbox, and the cluster set-up job."""
