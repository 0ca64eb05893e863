"""IAM documents and reads shared by several steps: the user's IAM snapshot, the
inline-policy read-modify-write, and the per-role session deny.
"""
